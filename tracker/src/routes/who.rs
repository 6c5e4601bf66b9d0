//! Who did it. Every tap, undo, recall, cancel, hand-over, remake and rush is recorded with the
//! name the screens show *and* the authenticated principal whose token made the request, so a
//! body cannot make anyone else responsible:
//!
//! - a signed-in staff member acts as themselves; a body naming someone else is a 422;
//! - a device (a station tablet) acts as the device, or as a person checked in at it, who must be
//!   on the pizzeria's kitchen staff list that auth keeps (the list the tablet checks people in
//!   from). Auth is asked with the device's own token, so the tracker learns nothing the tablet
//!   could not read itself.

use std::time::Duration;

use access::Caller;
use actix_web::{HttpRequest, http::StatusCode};
use anyhow::Context;
use serde::Deserialize;
use service_kit::http::ClientError;
use uuid::Uuid;

use crate::domain::{Actor, Principal};

use super::ApiError;

/// The body of actions that only say who did them.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ActorBody {
    // Left out means "the caller"; null is not a name.
    #[serde(default, deserialize_with = "service_kit::http::non_null")]
    pub actor: Option<String>,
    #[serde(default, deserialize_with = "service_kit::http::non_null")]
    pub actor_id: Option<Uuid>,
}

/// The body of actions that say who and why.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReasonBody {
    #[serde(default, deserialize_with = "service_kit::http::non_null")]
    pub actor: Option<String>,
    #[serde(default, deserialize_with = "service_kit::http::non_null")]
    pub actor_id: Option<Uuid>,
    #[serde(default, deserialize_with = "service_kit::http::non_null")]
    pub reason: Option<String>,
}

/// Who a request names: a staff member's display name (`actor`) or user id (`actor_id`).
#[derive(Debug, Clone, Copy, Default)]
pub struct Named<'a> {
    pub actor: Option<&'a str>,
    pub actor_id: Option<Uuid>,
}

impl ActorBody {
    pub fn named(&self) -> Named<'_> {
        Named {
            actor: self.actor.as_deref(),
            actor_id: self.actor_id,
        }
    }
}

impl ReasonBody {
    pub fn named(&self) -> Named<'_> {
        Named {
            actor: self.actor.as_deref(),
            actor_id: self.actor_id,
        }
    }
}

/// The pizzeria's kitchen staff as auth lists them, read with the caller's own token.
#[derive(Clone)]
pub struct KitchenStaff {
    client: reqwest::Client,
    auth_url: String,
}

#[derive(Debug, Deserialize)]
struct StaffList {
    staff: Vec<StaffMember>,
}

#[derive(Debug, Deserialize)]
struct StaffMember {
    id: Uuid,
    display_name: String,
}

impl KitchenStaff {
    pub fn new(settings: &access::AccessSettings) -> anyhow::Result<Self> {
        Ok(KitchenStaff {
            client: reqwest::Client::builder()
                .timeout(Duration::from_millis(settings.request_timeout_ms))
                .build()
                .context("cannot build the HTTP client for auth")?,
            auth_url: settings.auth_url.trim_end_matches('/').to_owned(),
        })
    }

    /// Never cached: a name is checked against the list as it is now, so someone whose kitchen
    /// role was taken away cannot be named a moment later. Only taps that name a person ask.
    async fn list(&self, pizzeria_id: Uuid, token: &str) -> Result<Vec<StaffMember>, ApiError> {
        let url = format!(
            "{}/api/v1/pizzerias/{pizzeria_id}/staff?role=kitchen_staff",
            self.auth_url
        );
        let answer = async {
            let response = self
                .client
                .get(&url)
                .bearer_auth(token)
                .send()
                .await?
                .error_for_status()?;
            response.json::<StaffList>().await
        }
        .await;
        match answer {
            Ok(list) => Ok(list.staff),
            Err(e) => {
                tracing::error!(error = %e, "cannot read the kitchen staff list from auth");
                Err(ClientError::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "auth_unavailable",
                    "the kitchen staff list cannot be read right now; try again shortly",
                )
                .into())
            }
        }
    }
}

const STAFF_ACTS_AS_THEMSELVES: &str =
    "must be left out or name you: a signed-in staff member acts as themselves";
const ON_THE_LIST: &str =
    "must name a kitchen staff member of this pizzeria (the tablet's check-in list)";

/// Who did it: the caller, or the kitchen staff member a device names (see the module).
pub async fn acting(
    caller: &Caller,
    req: &HttpRequest,
    pizzeria_id: Uuid,
    directory: &KitchenStaff,
    named: Named<'_>,
) -> Result<Actor, ApiError> {
    match caller {
        Caller::Staff(staff) => {
            if named.actor_id.is_some_and(|id| id != staff.user_id) {
                return Err(ClientError::invalid("actor_id", STAFF_ACTS_AS_THEMSELVES).into());
            }
            if named
                .actor
                .is_some_and(|name| name.trim() != staff.display_name)
            {
                return Err(ClientError::invalid("actor", STAFF_ACTS_AS_THEMSELVES).into());
            }
            let principal = Principal::User(staff.user_id);
            Ok(Actor::signed_in(
                &staff.display_name,
                Some(staff.user_id),
                principal,
            )?)
        }
        Caller::Device(device) => {
            let principal = Principal::Device(device.device_id);
            let token = access::request_token(req).unwrap_or_default();
            let member = match (named.actor_id, named.actor) {
                (None, None) => return Ok(Actor::signed_in(&device.name, None, principal)?),
                (Some(id), name) => {
                    let staff = directory.list(pizzeria_id, &token).await?;
                    let member = staff
                        .into_iter()
                        .find(|m| m.id == id)
                        .ok_or_else(|| ClientError::invalid("actor_id", ON_THE_LIST))?;
                    if name.is_some_and(|n| n.trim() != member.display_name) {
                        return Err(ClientError::invalid(
                            "actor",
                            "must be the display name of the staff member actor_id names",
                        )
                        .into());
                    }
                    member
                }
                (None, Some(name)) => {
                    // The name's own rules first (empty, too long), without asking auth.
                    let name = Actor::parse(name)?;
                    let staff = directory.list(pizzeria_id, &token).await?;
                    let mut matches = staff
                        .into_iter()
                        .filter(|m| m.display_name == name.as_str());
                    match (matches.next(), matches.next()) {
                        (Some(member), None) => member,
                        (Some(_), Some(_)) => {
                            return Err(ClientError::invalid(
                                "actor",
                                "names two kitchen staff members; send actor_id instead",
                            )
                            .into());
                        }
                        (None, _) => return Err(ClientError::invalid("actor", ON_THE_LIST).into()),
                    }
                }
            };
            Ok(Actor::signed_in(
                &member.display_name,
                Some(member.id),
                principal,
            )?)
        }
    }
}
