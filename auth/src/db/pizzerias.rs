use sqlx::PgConnection;
use uuid::Uuid;

/// The ids among `ids` that are not pizzerias auth has heard of from the tracker.
#[tracing::instrument(skip(conn))]
pub async fn unknown_pizzerias(
    conn: &mut PgConnection,
    ids: &[Uuid],
) -> Result<Vec<Uuid>, sqlx::Error> {
    let rows: Vec<(Uuid,)> = sqlx::query_as(
        "select id from unnest($1::uuid[]) as wanted (id) \
         where not exists (select 1 from pizzerias p where p.id = wanted.id)",
    )
    .bind(ids)
    .fetch_all(conn)
    .await?;
    Ok(rows.into_iter().map(|(id,)| id).collect())
}

#[tracing::instrument(skip(conn))]
pub async fn pizzeria_exists(conn: &mut PgConnection, id: Uuid) -> Result<bool, sqlx::Error> {
    Ok(unknown_pizzerias(conn, &[id]).await?.is_empty())
}

/// Applies the tracker's word on a pizzeria: inserts it, or renames it if `sequence` is newer than
/// the last event applied to it. `false` when the event was stale (or a repeat).
#[tracing::instrument(skip(conn))]
pub async fn apply_announced_pizzeria(
    conn: &mut PgConnection,
    id: Uuid,
    name: &str,
    sequence: i64,
) -> Result<bool, sqlx::Error> {
    let applied = sqlx::query(
        "insert into pizzerias (id, name, event_sequence) values ($1, $2, $3) \
         on conflict (id) do update set name = excluded.name, \
         event_sequence = excluded.event_sequence \
         where pizzerias.event_sequence < excluded.event_sequence",
    )
    .bind(id)
    .bind(name)
    .bind(sequence)
    .execute(conn)
    .await?;
    Ok(applied.rows_affected() == 1)
}
