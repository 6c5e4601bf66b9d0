//! Who is calling, and what they may do: the client every service uses to check staff sessions
//! and kitchen devices.
//!
//! - [`StaffVerifier`] asks the auth service (`POST /internal/v1/introspect`, protected by a
//!   service key) who a token belongs to, and caches the answer for a short while.
//! - [`CacheInvalidation`] keeps that cache honest: it listens on the bus for `auth.#` events
//!   (`UserRolesChanged`, `UserDeactivated`, `SessionRevoked`) through a queue of its own and
//!   drops the user's cached sessions. While it is not connected, or has not proven its
//!   connection for a moment, the cache is bypassed and every request introspects, so a broken
//!   bus never lets a revoked session live on. See ARCHITECTURE.md, "Staff access".
//! - [`Staff`] is the actix-web extractor: `Authorization: Bearer kst_...` (or the
//!   [`SESSION_COOKIE`]) in, a [`StaffPrincipal`] out, or a 401 with a JSON body.
//! - [`DeviceVerifier`] does the same for device tokens (`kdt_...`) against the devices service,
//!   its cache kept honest by `devices.#` events; [`Caller`] takes either kind of token and
//!   answers `require_station` / `require_board` for a station tablet, a TV board or staff.
//!
//! Roles and permissions ([`Role`], [`Permission`]) are defined here once; the auth service
//! grants with the same types.

mod cache;
mod device;
mod extractor;
mod invalidation;
pub mod permissions;
mod principal;
mod token;
mod verifier;

use service_kit::validation::ValidationError;

pub use device::{
    ClientInfo, DeviceAccessSettings, DeviceInfo, DeviceIntrospectionRequest,
    DeviceIntrospectionResponse, DeviceKind, DevicePrincipal, DeviceVerifier,
};
pub use extractor::{Caller, SESSION_COOKIE, Staff, request_token};
pub use invalidation::{CacheInvalidation, Invalidates};
pub use permissions::{Permission, Role};
pub use principal::{
    Grant, IntrospectionRequest, IntrospectionResponse, SessionInfo, StaffPrincipal, UserStatus,
    UserStatusRequest, UserStatusResponse,
};
pub use token::{
    DEVICE_TOKEN_PREFIX, STAFF_TOKEN_PREFIX, is_device_token, is_staff_token, random_url_safe,
    token_digest,
};
/// The languages the screens speak, as stored for a user (auth) and a device (devices): ISO 639-1
/// codes. The web has the catalogue of each; auth and devices refuse any other code.
pub const LANGUAGES: &[&str] = &["en", "ru"];

/// What a stored language must be, for the error that names the field.
pub const LANGUAGE_RULE: &str = "must be one of: en, ru";

/// The stored form of a language code (`"RU"`, `" ru "` → `"ru"`); `None` for a language the
/// screens do not speak.
pub fn language_code(raw: &str) -> Option<&'static str> {
    let code = raw.trim().to_ascii_lowercase();
    LANGUAGES.iter().copied().find(|l| *l == code)
}

/// A language the screens speak, as a user chooses it for themselves (auth) or a manager for a
/// device (devices).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Language(&'static str);

impl Language {
    pub fn parse(raw: &str) -> Result<Self, ValidationError> {
        language_code(raw)
            .map(Language)
            .ok_or_else(|| ValidationError::new("language", LANGUAGE_RULE))
    }

    pub fn as_str(self) -> &'static str {
        self.0
    }
}

pub use verifier::{
    AccessError, AccessSettings, INTROSPECTION_KEY_HEADER, StaffVerifier, has_service_key,
};

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn language_codes_are_read_leniently_and_only_known_ones_pass() {
        assert_eq!(language_code(" RU "), Some("ru"));
        assert_eq!(language_code("en"), Some("en"));
        assert_eq!(language_code("de"), None);
        assert_eq!(language_code(""), None);
        assert!(LANGUAGES.iter().all(|l| LANGUAGE_RULE.contains(l)));
        assert_eq!(Language::parse(" RU ").unwrap().as_str(), "ru");
        assert_eq!(Language::parse("de").unwrap_err().field, "language");
    }
}
