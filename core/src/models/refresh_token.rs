//! Refresh tokens, rotated on every use. Each login starts a family (a
//! "session"); presenting a token that was already rotated means it was stolen
//! or replayed, so the whole family is revoked.

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use uuid::Uuid;

use crate::schema::refresh_tokens;

#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = refresh_tokens, check_for_backend(diesel::pg::Pg))]
pub struct RefreshToken {
    pub id: Uuid,
    pub user_id: Uuid,
    pub family_id: Uuid,
    pub token_hash: Vec<u8>,
    pub user_agent: Option<String>,
    pub ip: Option<String>,
    pub created_at: DateTime<Utc>,
    pub last_used_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
    pub rotated_at: Option<DateTime<Utc>>,
    pub revoked_at: Option<DateTime<Utc>>,
}

#[derive(Debug, Insertable)]
#[diesel(table_name = refresh_tokens)]
pub struct NewRefreshToken<'a> {
    pub id: Uuid,
    pub user_id: Uuid,
    pub family_id: Uuid,
    pub token_hash: Vec<u8>,
    pub user_agent: Option<&'a str>,
    pub ip: Option<&'a str>,
    pub expires_at: DateTime<Utc>,
}

impl NewRefreshToken<'_> {
    pub async fn insert(&self, conn: &mut AsyncPgConnection) -> QueryResult<usize> {
        diesel::insert_into(refresh_tokens::table)
            .values(self)
            .execute(conn)
            .await
    }
}

/// What happened to a presented refresh token.
#[derive(Debug)]
pub enum Rotation {
    /// Valid: it is now rotated; issue its successor in the same family.
    Rotated(RefreshToken),
    /// Already rotated or revoked: the family has been revoked.
    Reused { user_id: Uuid, family_id: Uuid },
    /// Unknown or expired.
    Invalid,
}

/// One session = one family, described by its newest token.
#[derive(Debug, Clone, QueryableByName)]
pub struct SessionRow {
    #[diesel(sql_type = diesel::sql_types::Uuid)]
    pub family_id: Uuid,
    #[diesel(sql_type = diesel::sql_types::Nullable<diesel::sql_types::Text>)]
    pub user_agent: Option<String>,
    #[diesel(sql_type = diesel::sql_types::Nullable<diesel::sql_types::Text>)]
    pub ip: Option<String>,
    #[diesel(sql_type = diesel::sql_types::Timestamptz)]
    pub created_at: DateTime<Utc>,
    #[diesel(sql_type = diesel::sql_types::Timestamptz)]
    pub last_used_at: DateTime<Utc>,
}

impl RefreshToken {
    /// Rotates the token in one conditional UPDATE: of two concurrent uses of
    /// one token exactly one wins; the loser is treated as reuse.
    pub async fn rotate(conn: &mut AsyncPgConnection, token_hash: &[u8]) -> QueryResult<Rotation> {
        let rotated = diesel::update(
            refresh_tokens::table
                .filter(refresh_tokens::token_hash.eq(token_hash))
                .filter(refresh_tokens::rotated_at.is_null())
                .filter(refresh_tokens::revoked_at.is_null())
                .filter(refresh_tokens::expires_at.gt(diesel::dsl::now)),
        )
        .set(refresh_tokens::rotated_at.eq(diesel::dsl::now))
        .returning(RefreshToken::as_returning())
        .get_result(conn)
        .await
        .optional()?;
        if let Some(token) = rotated {
            return Ok(Rotation::Rotated(token));
        }
        let known: Option<RefreshToken> = refresh_tokens::table
            .filter(refresh_tokens::token_hash.eq(token_hash))
            .select(RefreshToken::as_select())
            .first(conn)
            .await
            .optional()?;
        match known {
            Some(t) if t.rotated_at.is_some() || t.revoked_at.is_some() => {
                Self::revoke_family(conn, t.user_id, t.family_id).await?;
                Ok(Rotation::Reused {
                    user_id: t.user_id,
                    family_id: t.family_id,
                })
            }
            _ => Ok(Rotation::Invalid),
        }
    }

    pub async fn revoke_family(
        conn: &mut AsyncPgConnection,
        user_id: Uuid,
        family_id: Uuid,
    ) -> QueryResult<usize> {
        diesel::update(
            refresh_tokens::table
                .filter(refresh_tokens::user_id.eq(user_id))
                .filter(refresh_tokens::family_id.eq(family_id))
                .filter(refresh_tokens::revoked_at.is_null()),
        )
        .set(refresh_tokens::revoked_at.eq(diesel::dsl::now))
        .execute(conn)
        .await
    }

    pub async fn revoke_all(conn: &mut AsyncPgConnection, user_id: Uuid) -> QueryResult<usize> {
        diesel::update(
            refresh_tokens::table
                .filter(refresh_tokens::user_id.eq(user_id))
                .filter(refresh_tokens::revoked_at.is_null()),
        )
        .set(refresh_tokens::revoked_at.eq(diesel::dsl::now))
        .execute(conn)
        .await
    }

    /// Live sessions of a user, newest use first.
    pub async fn sessions(
        conn: &mut AsyncPgConnection,
        user_id: Uuid,
    ) -> QueryResult<Vec<SessionRow>> {
        diesel::sql_query(
            "SELECT family_id, user_agent, ip,
                    (SELECT min(created_at) FROM refresh_tokens f WHERE f.family_id = t.family_id) AS created_at,
                    last_used_at
               FROM refresh_tokens t
              WHERE user_id = $1 AND revoked_at IS NULL AND rotated_at IS NULL AND expires_at > now()
              ORDER BY last_used_at DESC",
        )
        .bind::<diesel::sql_types::Uuid, _>(user_id)
        .load(conn)
        .await
    }
}
