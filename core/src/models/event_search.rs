//! Public event search: full text, facets, date and price ranges, stock, "near
//! me", four sort orders, keyset pagination.
//!
//! Keyset (not offset) pagination: each page starts strictly after the last
//! row of the previous one in a total order (the sort key, then the id), so
//! rows inserted or removed while a client pages never cause a duplicate or a
//! gap among the rows that were there all along.

use chrono::{DateTime, NaiveDate, Utc};
use diesel::{
    QueryResult, QueryableByName,
    pg::Pg,
    query_builder::{BoxedSqlQuery, SqlQuery},
    sql_types,
};
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use uuid::Uuid;

/// Mean Earth radius (IUGG), km.
const EARTH_RADIUS_KM: f64 = 6371.0088;
/// Kilometres per degree of latitude.
const KM_PER_DEGREE: f64 = 111.195;
/// Events without a public price sort after every priced one.
const NO_PRICE: i64 = i64::MAX;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SearchSort {
    /// Soonest first (the default).
    StartsAt,
    /// Cheapest public tier first.
    Price,
    /// Most recently published first.
    Newest,
    /// Nearest first; needs `near`.
    Distance,
}

impl SearchSort {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::StartsAt => "starts_at",
            Self::Price => "price",
            Self::Newest => "newest",
            Self::Distance => "distance",
        }
    }

    pub fn parse(value: &str) -> Option<Self> {
        Some(match value {
            "starts_at" | "date" => Self::StartsAt,
            "price" => Self::Price,
            "newest" => Self::Newest,
            "distance" => Self::Distance,
            _ => return None,
        })
    }
}

/// A bound of the date filter.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum DateBound {
    /// A calendar day, read in each event's own time zone: `from=2026-12-31`
    /// finds a Tokyo event starting at 00:30 Tokyo time on the 31st even though
    /// that is still the 30th in UTC.
    Day(NaiveDate),
    /// An exact instant (RFC 3339).
    Instant(DateTime<Utc>),
}

/// The sort key of the last row of a page: the next page starts after it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum SortKey {
    Time(DateTime<Utc>),
    Price(i64),
    Distance(f64),
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Near {
    pub latitude: f64,
    pub longitude: f64,
    pub radius_km: f64,
}

#[derive(Debug, Clone)]
pub struct EventSearch {
    pub text: Option<String>,
    pub category: Option<String>,
    pub city: Option<String>,
    pub from: Option<DateBound>,
    pub to: Option<DateBound>,
    pub price_min: Option<i64>,
    pub price_max: Option<i64>,
    pub available_only: bool,
    pub organizer_id: Option<Uuid>,
    pub near: Option<Near>,
    pub sort: SearchSort,
    pub after: Option<(SortKey, Uuid)>,
    pub limit: i64,
}

#[derive(Debug, Clone, QueryableByName)]
pub struct SearchHit {
    #[diesel(sql_type = sql_types::Uuid)]
    pub id: Uuid,
    #[diesel(sql_type = sql_types::Uuid)]
    pub organizer_id: Uuid,
    #[diesel(sql_type = sql_types::Text)]
    pub title: String,
    #[diesel(sql_type = sql_types::Text)]
    pub category: String,
    #[diesel(sql_type = sql_types::Text)]
    pub venue_name: String,
    #[diesel(sql_type = sql_types::Text)]
    pub city: String,
    #[diesel(sql_type = sql_types::Text)]
    pub country: String,
    #[diesel(sql_type = sql_types::Nullable<sql_types::Float8>)]
    pub latitude: Option<f64>,
    #[diesel(sql_type = sql_types::Nullable<sql_types::Float8>)]
    pub longitude: Option<f64>,
    #[diesel(sql_type = sql_types::Timestamptz)]
    pub starts_at: DateTime<Utc>,
    #[diesel(sql_type = sql_types::Timestamptz)]
    pub ends_at: DateTime<Utc>,
    #[diesel(sql_type = sql_types::Text)]
    pub timezone: String,
    #[diesel(sql_type = sql_types::Nullable<sql_types::Text>)]
    pub cover_image_url: Option<String>,
    #[diesel(sql_type = sql_types::Text)]
    pub currency: String,
    #[diesel(sql_type = sql_types::Nullable<sql_types::BigInt>)]
    pub min_price_minor: Option<i64>,
    #[diesel(sql_type = sql_types::Timestamptz)]
    pub published_at: DateTime<Utc>,
    #[diesel(sql_type = sql_types::Bool)]
    pub available: bool,
    #[diesel(sql_type = sql_types::Nullable<sql_types::Float8>)]
    pub distance_km: Option<f64>,
}

impl SearchHit {
    pub fn sort_key(&self, sort: SearchSort) -> SortKey {
        match sort {
            SearchSort::StartsAt => SortKey::Time(self.starts_at),
            SearchSort::Newest => SortKey::Time(self.published_at),
            SearchSort::Price => SortKey::Price(self.min_price_minor.unwrap_or(NO_PRICE)),
            SearchSort::Distance => SortKey::Distance(self.distance_km.unwrap_or(f64::MAX)),
        }
    }
}

/// SQL text plus positional binds, built together so `$n` always matches.
struct Sql {
    query: Option<BoxedSqlQuery<'static, Pg, SqlQuery>>,
    binds: usize,
}

impl Sql {
    fn new() -> Self {
        Self {
            query: Some(diesel::sql_query("").into_boxed()),
            binds: 0,
        }
    }

    fn push(&mut self, sql: &str) -> &mut Self {
        self.query = self.query.take().map(|q| q.sql(sql));
        self
    }

    fn bind<ST, V>(&mut self, value: V) -> &mut Self
    where
        Pg: diesel::sql_types::HasSqlType<ST>,
        V: diesel::serialize::ToSql<ST, Pg> + Send + 'static,
        ST: Send + 'static,
    {
        self.binds += 1;
        let placeholder = format!("${}", self.binds);
        self.query = self
            .query
            .take()
            .map(|q| q.sql(&placeholder).bind::<ST, V>(value));
        self
    }

    /// Great-circle distance (haversine) from the bound point, in km.
    fn distance(&mut self, near: &Near) -> &mut Self {
        self.push("(").push(&format!("{EARTH_RADIUS_KM}"));
        self.push(" * 2 * asin(least(1, sqrt(power(sin(radians(e.latitude - ");
        self.bind::<sql_types::Float8, _>(near.latitude);
        self.push(") / 2), 2) + cos(radians(");
        self.bind::<sql_types::Float8, _>(near.latitude);
        self.push(")) * cos(radians(e.latitude)) * power(sin(radians(e.longitude - ");
        self.bind::<sql_types::Float8, _>(near.longitude);
        self.push(") / 2), 2)))))")
    }

    fn finish(self) -> BoxedSqlQuery<'static, Pg, SqlQuery> {
        self.query.expect("query present")
    }
}

/// Plain words, as someone types them into a search box: every word must
/// match and the last may be unfinished (`roof` finds "Rooftop"), as a
/// `to_tsquery` of letters and digits only. `None` for web search syntax
/// (quotes, `-word`, `or`), which `websearch_to_tsquery` reads instead.
fn prefix_query(text: &str) -> Option<String> {
    let syntax = text.contains('"')
        || text
            .split_whitespace()
            .any(|t| t.starts_with('-') || t.eq_ignore_ascii_case("or"));
    if syntax {
        return None;
    }
    let words: Vec<&str> = text
        .split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty())
        .take(16)
        .collect();
    let (last, rest) = words.split_last()?;
    let mut query = rest.join(" & ");
    if !query.is_empty() {
        query.push_str(" & ");
    }
    query.push_str(last);
    query.push_str(":*");
    Some(query)
}

impl EventSearch {
    pub async fn run(&self, conn: &mut AsyncPgConnection) -> QueryResult<Vec<SearchHit>> {
        let mut sql = Sql::new();
        sql.push(
            "SELECT * FROM (SELECT e.id, e.organizer_id, e.title, e.category, e.venue_name, \
             e.city, e.country, e.latitude, e.longitude, e.starts_at, e.ends_at, e.timezone, \
             e.cover_image_url, e.currency::text AS currency, e.min_price_minor, \
             coalesce(e.published_at, e.created_at) AS published_at, ",
        );
        sql.push(&format!(
            "coalesce(e.min_price_minor, {NO_PRICE}) AS price_key, \
             EXISTS (SELECT 1 FROM ticket_tiers t JOIN tier_stock s ON s.tier_id = t.id \
                WHERE t.event_id = e.id AND NOT t.hidden AND s.held + s.sold < s.quantity \
                AND (t.sales_start_at IS NULL OR t.sales_start_at <= now()) \
                AND (t.sales_end_at IS NULL OR t.sales_end_at > now())) AS available, "
        ));
        match &self.near {
            Some(near) => sql.distance(near).push(" AS distance_km"),
            None => sql.push("NULL::float8 AS distance_km"),
        };
        sql.push(" FROM events e WHERE e.status = 'published'");

        if let Some(text) = &self.text {
            match prefix_query(text) {
                Some(query) => sql
                    .push(" AND e.search @@ to_tsquery('english', ")
                    .bind::<sql_types::Text, _>(query)
                    .push(")"),
                None => sql
                    .push(" AND e.search @@ websearch_to_tsquery('english', ")
                    .bind::<sql_types::Text, _>(text.clone())
                    .push(")"),
            };
        }
        if let Some(category) = &self.category {
            sql.push(" AND e.category = ")
                .bind::<sql_types::Text, _>(category.clone());
        }
        if let Some(city) = &self.city {
            sql.push(" AND lower(e.city) = lower(")
                .bind::<sql_types::Text, _>(city.clone())
                .push(")");
        }
        if let Some(organizer_id) = self.organizer_id {
            sql.push(" AND e.organizer_id = ")
                .bind::<sql_types::Uuid, _>(organizer_id);
        }
        match self.from {
            // Without a lower bound the list shows what is still to come.
            None => sql.push(" AND e.ends_at > now()"),
            Some(DateBound::Instant(t)) => sql
                .push(" AND e.starts_at >= ")
                .bind::<sql_types::Timestamptz, _>(t),
            // Local midnight is at most 14 h before UTC midnight (UTC+14): the
            // first, index-friendly bound narrows; the second is exact.
            Some(DateBound::Day(day)) => sql
                .push(" AND e.starts_at >= (")
                .bind::<sql_types::Date, _>(day)
                .push("::timestamp AT TIME ZONE 'UTC') - interval '14 hours'")
                .push(" AND (e.starts_at AT TIME ZONE e.timezone)::date >= ")
                .bind::<sql_types::Date, _>(day),
        };
        match self.to {
            None => &mut sql,
            Some(DateBound::Instant(t)) => sql
                .push(" AND e.starts_at < ")
                .bind::<sql_types::Timestamptz, _>(t),
            // Inclusive day; local midnight is at most 12 h after UTC's (UTC-12).
            Some(DateBound::Day(day)) => sql
                .push(" AND e.starts_at < (")
                .bind::<sql_types::Date, _>(day)
                .push("::timestamp AT TIME ZONE 'UTC') + interval '36 hours'")
                .push(" AND (e.starts_at AT TIME ZONE e.timezone)::date <= ")
                .bind::<sql_types::Date, _>(day),
        };
        if self.price_min.is_some() || self.price_max.is_some() {
            sql.push(
                " AND EXISTS (SELECT 1 FROM ticket_tiers p WHERE p.event_id = e.id AND NOT p.hidden",
            );
            if let Some(min) = self.price_min {
                sql.push(" AND p.price_minor >= ")
                    .bind::<sql_types::BigInt, _>(min);
            }
            if let Some(max) = self.price_max {
                sql.push(" AND p.price_minor <= ")
                    .bind::<sql_types::BigInt, _>(max);
            }
            sql.push(")");
        }
        if let Some(near) = &self.near {
            // A latitude band (and a longitude band where it does not wrap)
            // lets the index skip most rows before the exact distance.
            let dlat = near.radius_km / KM_PER_DEGREE;
            sql.push(" AND e.latitude BETWEEN ")
                .bind::<sql_types::Float8, _>(near.latitude - dlat)
                .push(" AND ")
                .bind::<sql_types::Float8, _>(near.latitude + dlat);
            let cos = near.latitude.to_radians().cos();
            if near.latitude.abs() + dlat < 89.0 {
                let dlng = near.radius_km / (KM_PER_DEGREE * cos);
                if near.longitude - dlng > -180.0 && near.longitude + dlng < 180.0 {
                    sql.push(" AND e.longitude BETWEEN ")
                        .bind::<sql_types::Float8, _>(near.longitude - dlng)
                        .push(" AND ")
                        .bind::<sql_types::Float8, _>(near.longitude + dlng);
                }
            }
        }
        sql.push(") s WHERE true");
        if self.available_only {
            sql.push(" AND s.available");
        }
        if let Some(near) = &self.near {
            sql.push(" AND s.distance_km <= ")
                .bind::<sql_types::Float8, _>(near.radius_km);
        }

        let (key_column, descending) = match self.sort {
            SearchSort::StartsAt => ("s.starts_at", false),
            SearchSort::Price => ("s.price_key", false),
            SearchSort::Newest => ("s.published_at", true),
            SearchSort::Distance => ("s.distance_km", false),
        };
        if let Some((key, id)) = self.after {
            let op = if descending { "<" } else { ">" };
            sql.push(&format!(" AND ({key_column}, s.id) {op} ("));
            match key {
                SortKey::Time(t) => sql.bind::<sql_types::Timestamptz, _>(t),
                SortKey::Price(p) => sql.bind::<sql_types::BigInt, _>(p),
                SortKey::Distance(d) => sql.bind::<sql_types::Float8, _>(d),
            };
            sql.push(", ").bind::<sql_types::Uuid, _>(id).push(")");
        }
        let direction = if descending { "DESC" } else { "ASC" };
        sql.push(&format!(
            " ORDER BY {key_column} {direction}, s.id {direction} LIMIT "
        ))
        .bind::<sql_types::BigInt, _>(self.limit);
        sql.finish().load(conn).await
    }
}

#[cfg(test)]
mod tests {
    use super::prefix_query;

    #[test]
    fn plain_words_match_with_the_last_unfinished() {
        assert_eq!(prefix_query("roof").as_deref(), Some("roof:*"));
        assert_eq!(prefix_query("  Jazz  bru").as_deref(), Some("Jazz & bru:*"));
        // Anything but letters and digits separates words, so nothing
        // reaches to_tsquery's own syntax.
        assert_eq!(
            prefix_query("rock&roll | (x):* !").as_deref(),
            Some("rock & roll & x:*")
        );
        assert_eq!(prefix_query("Zürich").as_deref(), Some("Zürich:*"));
        assert_eq!(prefix_query("!!!"), None);
    }

    #[test]
    fn web_search_syntax_is_left_to_websearch_to_tsquery() {
        assert_eq!(prefix_query("jazz -brunch"), None);
        assert_eq!(prefix_query("\"jazz club\""), None);
        assert_eq!(prefix_query("jazz or rock"), None);
    }
}
