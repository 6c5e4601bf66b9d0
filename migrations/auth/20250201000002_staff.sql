-- Staff accounts, their roles per pizzeria, sessions, login throttling and the audit log.

-- The pizzerias roles can be granted in. Registered by a chain admin (PUT /api/v1/pizzerias/{id})
-- or by `auth seed-demo`; a grant naming any other id is refused.
create table pizzerias (
    id uuid primary key,
    name text not null,
    created_at timestamptz not null default now()
);

create table users (
    id uuid primary key,
    -- Stored as typed; unique regardless of case (logins are compared in lower case).
    login text not null,
    display_name text not null,
    -- PHC string: $argon2id$v=19$m=19456,t=2,p=1$...
    password_hash text not null,
    active boolean not null default true,
    -- The sequence of the last event staged for this user (the envelope's `sequence`).
    event_sequence bigint not null default 0,
    created_at timestamptz not null default now(),
    deactivated_at timestamptz
);
create unique index users_login_key on users (lower(login));

-- chain_admin is held without a pizzeria; every other role in exactly one.
create table user_roles (
    user_id uuid not null references users (id),
    role text not null,
    pizzeria_id uuid references pizzerias (id),
    granted_at timestamptz not null default now(),
    granted_by uuid references users (id),
    check ((role = 'chain_admin') = (pizzeria_id is null))
);
create unique index user_roles_in_pizzeria on user_roles (user_id, pizzeria_id, role) where pizzeria_id is not null;
create unique index user_roles_chain_wide on user_roles (user_id, role) where pizzeria_id is null;
create index user_roles_by_pizzeria on user_roles (pizzeria_id, role);

create table sessions (
    id uuid primary key,
    user_id uuid not null references users (id),
    -- SHA-256 of the token; the token itself is never stored.
    token_hash bytea not null unique,
    created_at timestamptz not null default now(),
    last_seen_at timestamptz not null default now(),
    -- The absolute timeout; the idle timeout is last_seen_at plus the configured idle time.
    expires_at timestamptz not null,
    ip text,
    user_agent text,
    revoked_at timestamptz,
    revoked_reason text
);
create index sessions_by_user on sessions (user_id) where revoked_at is null;

-- Failed logins per (login, client IP): a lockout here stops that IP guessing that login, and
-- nobody else. Unknown logins are counted too, so a lockout reveals nothing.
create table login_failures (
    login text not null,
    ip text not null,
    failures integer not null default 0,
    lockouts integer not null default 0,
    locked_until timestamptz,
    last_failure_at timestamptz not null default now(),
    primary key (login, ip)
);

-- Failed logins per client IP in a fixed window, across all logins.
create table ip_failures (
    ip text primary key,
    window_started_at timestamptz not null,
    failures integer not null default 0
);

create table audit_log (
    id bigserial primary key,
    at timestamptz not null default now(),
    -- login_succeeded, login_failed, login_locked_out, login_throttled, logout,
    -- session_revoked, user_created, role_granted, role_revoked, user_deactivated,
    -- pizzeria_registered
    action text not null,
    actor_id uuid,
    target_user_id uuid,
    pizzeria_id uuid,
    session_id uuid,
    ip text,
    details jsonb not null default '{}'
);
create index audit_log_by_target on audit_log (target_user_id, id);
create index audit_log_by_actor on audit_log (actor_id, id);
