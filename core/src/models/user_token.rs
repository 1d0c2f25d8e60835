use chrono::{DateTime, Utc};
use diesel::prelude::*;
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use uuid::Uuid;

use crate::schema::user_tokens;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenPurpose {
    VerifyEmail,
    ResetPassword,
}

impl TokenPurpose {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::VerifyEmail => "verify_email",
            Self::ResetPassword => "reset_password",
        }
    }
}

#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = user_tokens, check_for_backend(diesel::pg::Pg))]
pub struct UserToken {
    pub id: Uuid,
    pub user_id: Uuid,
    pub purpose: String,
    pub token_hash: Vec<u8>,
    pub created_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
    pub used_at: Option<DateTime<Utc>>,
}

impl UserToken {
    /// Creates a one-time token row; the token itself is derived from the id
    /// (see `auth::tokens::email_token`) and only its hash is stored.
    pub async fn create(
        conn: &mut AsyncPgConnection,
        secret: &[u8],
        user_id: Uuid,
        purpose: TokenPurpose,
        ttl: std::time::Duration,
    ) -> QueryResult<Uuid> {
        let id = Uuid::now_v7();
        let token = crate::auth::tokens::email_token(secret, purpose.as_str(), id);
        let expires_at =
            Utc::now() + chrono::Duration::from_std(ttl).unwrap_or(chrono::Duration::hours(24));
        diesel::insert_into(user_tokens::table)
            .values((
                user_tokens::id.eq(id),
                user_tokens::user_id.eq(user_id),
                user_tokens::purpose.eq(purpose.as_str()),
                user_tokens::token_hash.eq(crate::auth::tokens::hash(&token)),
                user_tokens::expires_at.eq(expires_at),
            ))
            .execute(conn)
            .await?;
        Ok(id)
    }

    /// Marks the token used and returns its user, if the token is valid,
    /// unused and unexpired. One UPDATE, so two concurrent uses cannot both win.
    pub async fn consume(
        conn: &mut AsyncPgConnection,
        token: &str,
        purpose: TokenPurpose,
    ) -> QueryResult<Option<Uuid>> {
        diesel::update(
            user_tokens::table
                .filter(user_tokens::token_hash.eq(crate::auth::tokens::hash(token)))
                .filter(user_tokens::purpose.eq(purpose.as_str()))
                .filter(user_tokens::used_at.is_null())
                .filter(user_tokens::expires_at.gt(diesel::dsl::now)),
        )
        .set(user_tokens::used_at.eq(diesel::dsl::now))
        .returning(user_tokens::user_id)
        .get_result(conn)
        .await
        .optional()
    }

    /// Other outstanding tokens of the same purpose stop working once one is used.
    pub async fn invalidate_all(
        conn: &mut AsyncPgConnection,
        user_id: Uuid,
        purpose: TokenPurpose,
    ) -> QueryResult<usize> {
        diesel::update(
            user_tokens::table
                .filter(user_tokens::user_id.eq(user_id))
                .filter(user_tokens::purpose.eq(purpose.as_str()))
                .filter(user_tokens::used_at.is_null()),
        )
        .set(user_tokens::used_at.eq(diesel::dsl::now))
        .execute(conn)
        .await
    }
}
