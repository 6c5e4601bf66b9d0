-- What a device's screen looks like, chosen by the approver and changed on the Devices page:
-- the language it speaks (an ISO 639-1 code the web has a catalogue for; null: the browser's),
-- and for a TV board how it shows customers: their name, the order number only, or an icon
-- with the number. New columns only (expand): running code is unaffected. Validated by the
-- service, so adding a language needs no migration.
alter table device_authorizations add column language text;
alter table devices add column language text;
alter table devices add column board_mode text not null default 'name'
    check (board_mode in ('name', 'number', 'icon'));
