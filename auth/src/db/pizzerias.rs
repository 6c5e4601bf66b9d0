use sqlx::PgConnection;
use uuid::Uuid;

/// Registers the pizzeria or renames it. Returns whether it was new.
#[tracing::instrument(skip(conn))]
pub async fn upsert_pizzeria(
    conn: &mut PgConnection,
    id: Uuid,
    name: &str,
) -> Result<bool, sqlx::Error> {
    let (inserted,): (bool,) = sqlx::query_as(
        "insert into pizzerias (id, name) values ($1, $2) \
         on conflict (id) do update set name = excluded.name \
         returning (xmax = 0)",
    )
    .bind(id)
    .bind(name)
    .fetch_one(conn)
    .await?;
    Ok(inserted)
}

/// The ids among `ids` that are not registered pizzerias.
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
