//! `GET /events`: server-sent events for the open screens of one pizzeria. Each message is
//! `{"p": pizzeria, "s": [stations] | null, "b": true}`; the page fetches its fragment again.
//! A comment every 5 s keeps proxies from closing the stream, and lets the server notice a
//! browser that went away (only a write to its closed connection fails), which gives the
//! stream's place under the cap back within about two of them.
//!
//! A stream is checked at connect like any page, and then kept honest while it is open: it ends
//! as soon as the bus says its session or device was revoked (or its user deactivated, its
//! roles or the device's station changed; the browser reconnects and is checked afresh). While
//! that subscription is down the stream checks its viewer itself every second, and every
//! [`RECHECK_EVERY`] anyway, so a revocation it did not hear of still ends it. Each session or
//! device may hold `screens.max_streams_per_viewer` streams; one more is a 429.

use std::{
    sync::Arc,
    time::{Duration, Instant},
};

use access::{ClientInfo, DeviceVerifier, StaffVerifier};
use actix_web::{HttpRequest, HttpResponse, http::StatusCode, http::header, web};
use futures_util::stream;
use serde::Deserialize;
use tokio::sync::broadcast::{self, error::RecvError};
use uuid::Uuid;

use crate::{
    errors::{LiveError, PageError},
    push::{Notice, StreamSlot, Viewer},
    session::{self, DEVICE_COOKIE, DeviceViewer, StaffViewer},
};

use super::AppState;

/// A comment this often keeps proxies from closing an idle stream and finds closed ones.
const KEEP_ALIVE: Duration = Duration::from_secs(5);
/// How often a stream looks at whether it must check its viewer itself.
const TICK: Duration = Duration::from_secs(1);
/// A stream checks its viewer at least this often even while revocations arrive over the bus:
/// the bound if the subscription fails silently.
pub const RECHECK_EVERY: Duration = Duration::from_secs(30);

#[derive(Debug, Deserialize)]
pub struct EventsQuery {
    pizzeria: Option<Uuid>,
}

/// How to check the stream's viewer again: their credential and the verifier that knows it.
enum Credential {
    Staff {
        token: String,
        verifier: web::Data<StaffVerifier>,
    },
    Device {
        token: String,
        client: ClientInfo,
        verifier: web::Data<DeviceVerifier>,
    },
}

impl Credential {
    /// Whether the viewer may still follow `pizzeria_id`. Fails closed: an answer that cannot
    /// be had (auth or devices unreachable) ends the stream too; the browser reconnects.
    async fn still_follows(&self, pizzeria_id: Uuid) -> bool {
        match self {
            Credential::Staff { token, verifier } => matches!(
                verifier.verify(token).await,
                Ok(Some(principal)) if principal.works_in(pizzeria_id)
            ),
            Credential::Device {
                token,
                client,
                verifier,
            } => matches!(
                verifier.verify(token, client).await,
                Ok(Some(device)) if device.pizzeria_id == pizzeria_id
            ),
        }
    }
}

/// Who follows which pizzeria, and how to check them again.
struct Follower {
    pizzeria_id: Uuid,
    viewer: Viewer,
    credential: Credential,
}

/// The pizzeria whose changes the viewer may follow: a device's own, or one a staff member
/// works in.
async fn follower(req: &HttpRequest, query: &EventsQuery) -> Result<Follower, PageError> {
    use actix_web::FromRequest;
    let missing = |what: &str| PageError::Internal(anyhow::anyhow!("no {what}"));
    if session::cookie(req, DEVICE_COOKIE).is_some() {
        let device = DeviceViewer::extract(req).await?;
        return Ok(Follower {
            pizzeria_id: device.device.pizzeria_id,
            viewer: Viewer::Device {
                device_id: device.device.device_id,
            },
            credential: Credential::Device {
                token: device.token,
                client: ClientInfo::of(req, &super::trusted_proxies(req)),
                verifier: req
                    .app_data::<web::Data<DeviceVerifier>>()
                    .cloned()
                    .ok_or_else(|| missing("DeviceVerifier"))?,
            },
        });
    }
    let staff = StaffViewer::extract(req).await?;
    let pizzeria = query
        .pizzeria
        .ok_or_else(|| PageError::NotFound("pizzeria".into()))?;
    if !staff.principal.works_in(pizzeria) {
        return Err(PageError::Forbidden("pizzeria".into()));
    }
    Ok(Follower {
        pizzeria_id: pizzeria,
        viewer: Viewer::Staff {
            user_id: staff.principal.user_id,
            session_id: staff.principal.session_id,
        },
        credential: Credential::Staff {
            token: staff.token,
            verifier: req
                .app_data::<web::Data<StaffVerifier>>()
                .cloned()
                .ok_or_else(|| missing("StaffVerifier"))?,
        },
    })
}

/// One open stream's state between two messages.
struct Stream {
    follower: Follower,
    state: web::Data<AppState>,
    receiver: broadcast::Receiver<Arc<Notice>>,
    tick: tokio::time::Interval,
    /// Held for as long as the stream is open: its place under the viewer's cap.
    _slot: StreamSlot,
    hello: bool,
    last_sent: Instant,
    last_checked: Instant,
}

/// What the stream does next.
enum Step {
    Send(web::Bytes),
    End,
    Wait,
}

impl Stream {
    async fn next(&mut self) -> Step {
        if self.hello {
            self.hello = false;
            return Step::Send(web::Bytes::from_static(b"retry: 3000\n: connected\n\n"));
        }
        let pizzeria_id = self.follower.pizzeria_id;
        tokio::select! {
            next = self.receiver.recv() => match next {
                Ok(notice) => match notice.as_ref() {
                    Notice::Change(change) if change.pizzeria_id == pizzeria_id => {
                        let data = serde_json::to_string(change).unwrap_or_default();
                        Step::Send(web::Bytes::from(format!("data: {data}\n\n")))
                    }
                    Notice::Revoked(revocation) if revocation.ends(&self.follower.viewer) => {
                        tracing::info!(viewer = ?self.follower.viewer, "a revoked viewer's stream ends");
                        Step::End
                    }
                    _ => Step::Wait,
                },
                // Too slow to keep up: tell the page to look again at everything, and check the
                // viewer, since a revocation may have been among what was missed.
                Err(RecvError::Lagged(_)) => {
                    if !self.follower.credential.still_follows(pizzeria_id).await {
                        return Step::End;
                    }
                    self.last_checked = Instant::now();
                    Step::Send(web::Bytes::from(format!(
                        "data: {{\"p\":\"{pizzeria_id}\",\"s\":null,\"b\":true}}\n\n"
                    )))
                }
                Err(RecvError::Closed) => Step::End,
            },
            _ = self.tick.tick() => {
                let due = !self.state.push.is_connected()
                    || self.last_checked.elapsed() >= RECHECK_EVERY;
                if due {
                    if !self.follower.credential.still_follows(pizzeria_id).await {
                        return Step::End;
                    }
                    self.last_checked = Instant::now();
                }
                if self.last_sent.elapsed() >= KEEP_ALIVE {
                    Step::Send(web::Bytes::from_static(b": keep-alive\n\n"))
                } else {
                    Step::Wait
                }
            }
            _ = self.state.shutdown.wait() => Step::End,
        }
    }
}

pub async fn events(
    req: HttpRequest,
    state: web::Data<AppState>,
    query: web::Query<EventsQuery>,
) -> Result<HttpResponse, LiveError> {
    let follower = follower(&req, &query).await?;
    let slot = state
        .push
        .open_stream(follower.viewer)
        .ok_or_else(|| PageError::Refused {
            status: StatusCode::TOO_MANY_REQUESTS,
            message: "too many live-update streams open for this session or device".into(),
        })?;
    let mut tick = tokio::time::interval(TICK);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let now = Instant::now();
    let stream = Stream {
        follower,
        receiver: state.push.subscribe(),
        state,
        tick,
        _slot: slot,
        hello: true,
        last_sent: now,
        last_checked: now,
    };
    let changes = stream::unfold(stream, |mut stream| async move {
        loop {
            match stream.next().await {
                Step::Send(bytes) => {
                    stream.last_sent = Instant::now();
                    return Some((Ok::<_, actix_web::Error>(bytes), stream));
                }
                Step::End => return None,
                Step::Wait => {}
            }
        }
    });
    Ok(HttpResponse::Ok()
        .insert_header((header::CONTENT_TYPE, "text/event-stream"))
        .insert_header((header::CACHE_CONTROL, "no-cache"))
        .insert_header(("x-accel-buffering", "no"))
        .streaming(changes))
}
