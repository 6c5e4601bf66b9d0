//! The audit log, for chain admins.

use actix_web::HttpResponse;
use anyhow::Context;
use serde::Deserialize;
use service_kit::http::{ClientError, Deferred, Query};
use sqlx::PgPool;
use uuid::Uuid;

use crate::db::audit::{self, AuditFilter};

use super::{ApiError, Caller};

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuditQuery {
    user_id: Option<Uuid>,
    action: Option<String>,
    before_id: Option<i64>,
    limit: Option<i64>,
}

/// `GET /api/v1/audit?user_id=&action=&before_id=&limit=`: newest first, 100 by default.
pub async fn list(
    caller: Caller,
    pool: actix_web::web::Data<PgPool>,
    query: Deferred<Query<AuditQuery>>,
) -> Result<HttpResponse, ApiError> {
    caller.require_chain_admin()?;
    let Query(query) = query.get()?;
    let limit = query.limit.unwrap_or(100);
    if !(1..=1000).contains(&limit) {
        return Err(ClientError::invalid("limit", "must be between 1 and 1000").into());
    }
    let filter = AuditFilter {
        user_id: query.user_id,
        action: query.action,
        before_id: query.before_id,
        limit,
    };
    let mut conn = pool.acquire().await.context("no database connection")?;
    let entries = audit::list(&mut conn, &filter).await?;
    Ok(HttpResponse::Ok().json(serde_json::json!({ "entries": entries })))
}
