-- Pruning (devices/src/retention.rs) deletes pairing requests long expired that no device came
-- from, in chunks: these indexes find them by expiry and check a device's origin without a scan.
create index device_authorizations_by_expiry on device_authorizations (expires_at);
create index devices_by_authorization on devices (authorization_id);
