use chrono::{DateTime, Utc};
use diesel::prelude::*;
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::schema::users;

#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize, utoipa::ToSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    Attendee,
    Organizer,
    Admin,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Attendee => "attendee",
            Self::Organizer => "organizer",
            Self::Admin => "admin",
        }
    }
}

/// A name that is no role's.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown role {0:?}")]
pub struct UnknownRole(pub String);

impl std::str::FromStr for Role {
    type Err = UnknownRole;
    fn from_str(s: &str) -> Result<Self, UnknownRole> {
        match s {
            "attendee" => Ok(Self::Attendee),
            "organizer" => Ok(Self::Organizer),
            "admin" => Ok(Self::Admin),
            other => Err(UnknownRole(other.to_owned())),
        }
    }
}

#[derive(Debug, Clone, Queryable, Selectable, Identifiable)]
#[diesel(table_name = users, check_for_backend(diesel::pg::Pg))]
pub struct User {
    pub id: Uuid,
    pub email: String,
    pub password_hash: String,
    pub display_name: String,
    pub role: String,
    pub email_verified_at: Option<DateTime<Utc>>,
    pub token_version: i32,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    /// Where payouts go: the provider's recipient id.
    pub payout_account: Option<String>,
    /// The organizer's payment provider (`None`: the platform's default).
    pub payment_provider: Option<String>,
}

impl User {
    pub fn role(&self) -> Role {
        // The CHECK constraint admits only the three known roles.
        self.role.parse().unwrap_or(Role::Attendee)
    }

    /// The organizer's payment provider, if they chose one.
    pub async fn payment_provider(
        conn: &mut AsyncPgConnection,
        id: Uuid,
    ) -> QueryResult<Option<String>> {
        users::table
            .find(id)
            .select(users::payment_provider)
            .first(conn)
            .await
    }

    pub async fn find(conn: &mut AsyncPgConnection, id: Uuid) -> QueryResult<User> {
        users::table
            .find(id)
            .select(User::as_select())
            .first(conn)
            .await
    }

    /// Users by id.
    pub async fn find_many(
        conn: &mut AsyncPgConnection,
        ids: &[Uuid],
    ) -> QueryResult<std::collections::HashMap<Uuid, User>> {
        Ok(users::table
            .filter(users::id.eq_any(ids))
            .select(User::as_select())
            .load(conn)
            .await?
            .into_iter()
            .map(|u: User| (u.id, u))
            .collect())
    }

    /// The user an access token names, if the token is still good: same token
    /// version (no password reset or role change since), and its session
    /// (refresh-token family) still alive, so revoking a session ends its
    /// access tokens too. One round trip: it runs on every authenticated request.
    pub async fn find_for_access_token(
        conn: &mut AsyncPgConnection,
        session: AccessSession,
    ) -> QueryResult<Option<User>> {
        use crate::schema::refresh_tokens;
        let AccessSession {
            user_id: id,
            token_version,
            session_id,
        } = session;
        users::table
            .find(id)
            .filter(users::token_version.eq(token_version))
            .filter(diesel::dsl::exists(
                refresh_tokens::table
                    .filter(refresh_tokens::user_id.eq(id))
                    .filter(refresh_tokens::family_id.eq(session_id))
                    .filter(refresh_tokens::revoked_at.is_null())
                    .filter(refresh_tokens::rotated_at.is_null())
                    .filter(refresh_tokens::expires_at.gt(diesel::dsl::now)),
            ))
            .select(User::as_select())
            .first(conn)
            .await
            .optional()
    }

    /// Case-insensitive: the column is citext.
    pub async fn find_by_email(
        conn: &mut AsyncPgConnection,
        email: &str,
    ) -> QueryResult<Option<User>> {
        users::table
            .filter(users::email.eq(email))
            .select(User::as_select())
            .first(conn)
            .await
            .optional()
    }

    pub async fn mark_verified(conn: &mut AsyncPgConnection, id: Uuid) -> QueryResult<usize> {
        diesel::update(
            users::table
                .find(id)
                .filter(users::email_verified_at.is_null()),
        )
        .set(users::email_verified_at.eq(diesel::dsl::now))
        .execute(conn)
        .await
    }

    /// New password; bumps the token version so every access token dies.
    pub async fn set_password(
        conn: &mut AsyncPgConnection,
        id: Uuid,
        hash: &str,
    ) -> QueryResult<usize> {
        diesel::update(users::table.find(id))
            .set((
                users::password_hash.eq(hash),
                users::token_version.eq(users::token_version + 1),
            ))
            .execute(conn)
            .await
    }

    /// Users whose email or name contains `text` (any case), of `role`,
    /// newest first after the keyset `after` (`created_at`, `id`). For an
    /// admin looking someone up: a scan of `users` is acceptable there.
    pub async fn search(
        conn: &mut AsyncPgConnection,
        text: Option<&str>,
        role: Option<Role>,
        after: Option<(DateTime<Utc>, Uuid)>,
        limit: i64,
    ) -> QueryResult<Vec<User>> {
        let mut query = users::table.select(User::as_select()).into_boxed();
        if let Some(text) = text {
            let pattern = super::contains_pattern(text);
            query = query.filter(
                // citext: LIKE ignores case already.
                users::email
                    .like(pattern.clone())
                    .or(users::display_name.ilike(pattern)),
            );
        }
        if let Some(role) = role {
            query = query.filter(users::role.eq(role.as_str()));
        }
        if let Some((at, id)) = after {
            query = query.filter(
                users::created_at
                    .lt(at)
                    .or(users::created_at.eq(at).and(users::id.lt(id))),
            );
        }
        query
            .order((users::created_at.desc(), users::id.desc()))
            .limit(limit)
            .load(conn)
            .await
    }

    pub async fn set_role(conn: &mut AsyncPgConnection, id: Uuid, role: Role) -> QueryResult<User> {
        diesel::update(users::table.find(id))
            .set((
                users::role.eq(role.as_str()),
                users::token_version.eq(users::token_version + 1),
            ))
            .returning(User::as_returning())
            .get_result(conn)
            .await
    }

    /// Where the organizer's payouts go from now on, and at which provider
    /// (`None`: the platform's default), which takes their checkouts too.
    pub async fn set_payout_account(
        conn: &mut AsyncPgConnection,
        id: Uuid,
        account: &str,
        provider: Option<&str>,
    ) -> QueryResult<User> {
        diesel::update(users::table.find(id))
            .set((
                users::payout_account.eq(account),
                users::payment_provider.eq(provider),
            ))
            .returning(User::as_returning())
            .get_result(conn)
            .await
    }
}

#[derive(Debug, Insertable)]
#[diesel(table_name = users)]
pub struct NewUser<'a> {
    pub id: Uuid,
    pub email: &'a str,
    pub password_hash: &'a str,
    pub display_name: &'a str,
    pub role: &'a str,
}

impl NewUser<'_> {
    pub async fn insert(&self, conn: &mut AsyncPgConnection) -> QueryResult<User> {
        diesel::insert_into(users::table)
            .values(self)
            .returning(User::as_returning())
            .get_result(conn)
            .await
    }
}

/// SQL: user row `u` holds the access session `v` (a row with
/// `token_version` and `session_id`): the check
/// [`User::find_for_access_token`] makes, for a statement that folds it in
/// to save the request a query of its own.
macro_rules! session_alive {
    () => {
        "u.token_version = v.token_version
         AND EXISTS (SELECT 1 FROM refresh_tokens r
                      WHERE r.user_id = u.id AND r.family_id = v.session_id
                        AND r.revoked_at IS NULL AND r.rotated_at IS NULL
                        AND r.expires_at > now())"
    };
}
pub(crate) use session_alive;

/// The session an access token was issued for, as its claims name it. Good
/// while the user's token version is unchanged and the session's refresh
/// tokens are alive ([`User::find_for_access_token`]); placing an order and
/// scanning a ticket check it in their own statements instead
/// ([`session_alive`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AccessSession {
    pub user_id: Uuid,
    pub token_version: i32,
    pub session_id: Uuid,
}
