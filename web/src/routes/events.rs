//! `GET /events`: server-sent events for the open screens of one pizzeria. Each message is
//! `{"p": pizzeria, "s": [stations] | null, "b": true}`; the page fetches its fragment again.
//! A comment every 15 s keeps proxies from closing the stream.

use std::time::Duration;

use actix_web::{HttpRequest, HttpResponse, http::header, web};
use futures_util::stream;
use serde::Deserialize;
use tokio::sync::broadcast::error::RecvError;
use uuid::Uuid;

use crate::{
    errors::{LiveError, PageError},
    session::{self, DEVICE_COOKIE, DeviceViewer, StaffViewer},
};

use super::AppState;

#[derive(Debug, Deserialize)]
pub struct EventsQuery {
    pizzeria: Option<Uuid>,
}

/// The pizzeria whose changes the viewer may follow: a device's own, or one a staff member
/// works in.
async fn pizzeria_of(
    req: &HttpRequest,
    query: &EventsQuery,
) -> Result<(Uuid, Option<String>), PageError> {
    use actix_web::FromRequest;
    if session::cookie(req, DEVICE_COOKIE).is_some() {
        let device = DeviceViewer::extract(req).await?;
        return Ok((device.device.pizzeria_id, device.device.station.clone()));
    }
    let staff = StaffViewer::extract(req).await?;
    let pizzeria = query
        .pizzeria
        .ok_or_else(|| PageError::NotFound("pizzeria".into()))?;
    if staff.principal.works_in(pizzeria) {
        Ok((pizzeria, None))
    } else {
        Err(PageError::Forbidden("pizzeria".into()))
    }
}

pub async fn events(
    req: HttpRequest,
    state: web::Data<AppState>,
    query: web::Query<EventsQuery>,
) -> Result<HttpResponse, LiveError> {
    let (pizzeria_id, _station) = pizzeria_of(&req, &query).await?;
    let receiver = state.push.subscribe();
    let shutdown = state.shutdown.clone();
    let hello = web::Bytes::from_static(b"retry: 3000\n: connected\n\n");
    let changes = stream::unfold(
        (receiver, shutdown, Some(hello)),
        move |(mut receiver, shutdown, first)| async move {
            if let Some(first) = first {
                return Some((Ok::<_, actix_web::Error>(first), (receiver, shutdown, None)));
            }
            loop {
                let next = tokio::select! {
                    next = receiver.recv() => next,
                    _ = tokio::time::sleep(Duration::from_secs(15)) => {
                        return Some((Ok(web::Bytes::from_static(b": keep-alive\n\n")), (receiver, shutdown, None)));
                    }
                    _ = shutdown.wait() => return None,
                };
                match next {
                    Ok(change) if change.pizzeria_id == pizzeria_id => {
                        let data = serde_json::to_string(change.as_ref()).unwrap_or_default();
                        let message = web::Bytes::from(format!("data: {data}\n\n"));
                        return Some((Ok(message), (receiver, shutdown, None)));
                    }
                    Ok(_) => continue,
                    // Too slow to keep up: tell the page to look again at everything.
                    Err(RecvError::Lagged(_)) => {
                        let data =
                            format!("data: {{\"p\":\"{pizzeria_id}\",\"s\":null,\"b\":true}}\n\n");
                        return Some((Ok(web::Bytes::from(data)), (receiver, shutdown, None)));
                    }
                    Err(RecvError::Closed) => return None,
                }
            }
        },
    );
    Ok(HttpResponse::Ok()
        .insert_header((header::CONTENT_TYPE, "text/event-stream"))
        .insert_header((header::CACHE_CONTROL, "no-cache"))
        .insert_header(("x-accel-buffering", "no"))
        .streaming(changes))
}
