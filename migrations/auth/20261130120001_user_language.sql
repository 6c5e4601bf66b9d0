-- The language a person chose for the screens (an ISO 639-1 code the web has a catalogue for);
-- null: their browser's. Only a new nullable column, so the running code is unaffected
-- (expand). Validated by the service, not a check constraint, so adding a language needs no
-- migration.
alter table users add column language text;
