-- Kitchen devices: pairing requests (RFC 8628 device authorizations), the devices with their
-- hashed tokens, and the budget for entering user codes.

-- One "log in as device" request. The device holds the device code (only its SHA-256 is kept);
-- a staff member types the user code on their own computer and approves or denies.
create table device_authorizations (
    id uuid primary key,
    device_code_hash bytea not null unique,
    -- Normalised: 8 letters of BCDFGHJKLMNPQRSTVWXZ, without the dash.
    user_code text not null,
    client_id text not null,
    scope text,
    -- pending -> approved -> redeemed (the device picked up its token), or pending -> denied;
    -- expired marks a stale row whose user code is handed out again.
    status text not null default 'pending'
        check (status in ('pending', 'approved', 'denied', 'redeemed', 'expired')),
    requested_at timestamptz not null default now(),
    expires_at timestamptz not null,
    -- The polling interval the device must keep; slow_down adds 5 s.
    interval_seconds integer not null,
    last_polled_at timestamptz,
    -- Who asked, so the approver sees it.
    ip text not null,
    user_agent text,
    decided_at timestamptz,
    decided_by uuid,
    decided_by_name text,
    -- What the approver chose.
    pizzeria_id uuid,
    kind text,
    name text,
    station text,
    device_id uuid
);
-- A user code names one live request at a time.
create unique index device_authorizations_live_user_code on device_authorizations (user_code)
    where status in ('pending', 'approved');

create table devices (
    id uuid primary key,
    pizzeria_id uuid not null,
    -- kitchen_station, order_board, motivation_board, shift_manager_screen
    kind text not null,
    name text not null,
    -- The station code of a station tablet; null for every other kind.
    station text,
    -- SHA-256 of the token; the token itself is never stored.
    token_hash bytea not null unique,
    authorization_id uuid not null references device_authorizations (id),
    approved_by uuid not null,
    approved_by_name text not null,
    requested_at timestamptz not null,
    approved_at timestamptz not null,
    created_at timestamptz not null default now(),
    last_seen_at timestamptz,
    last_ip text,
    last_user_agent text,
    revoked_at timestamptz,
    revoked_by uuid,
    -- The sequence of the last event staged for this device (the envelope's `sequence`).
    event_sequence bigint not null default 0,
    check ((kind = 'kitchen_station') = (station is not null))
);
create index devices_by_pizzeria on devices (pizzeria_id, created_at);

-- User-code entries per key ("session:<id>", "ip:<address>") in a fixed window (RFC 8628 §5.1).
create table code_lookups (
    key text primary key,
    window_started_at timestamptz not null,
    lookups integer not null default 0
);
