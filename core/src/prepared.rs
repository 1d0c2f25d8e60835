//! Keeps hot statements prepared on their connection.
//!
//! diesel caches a connection's prepared statements only for queries whose
//! SQL cannot vary for one Rust type, so it never caches an `UPDATE` (a
//! changeset may skip `None` fields), an `INSERT`, a `sql_query` or anything
//! holding a `sql` literal: each run is parsed and planned again, in an
//! extra round trip. On the paths that run thousands of times a second
//! (email claims, reservation batches, checkouts) that costs more Postgres
//! time than the statements themselves.
//!
//! `.prepared()` marks one statement whose SQL text is fixed. It is cached
//! under its SQL text and bind types (never a type id), so even a statement
//! whose text did vary would get an entry per text, never a wrong plan; the
//! rule is only there to keep the cache small, so use it on fixed text alone.
//!
//! A prepared statement may be run on one generic plan after its fifth run,
//! and that plan is kept until the table's statistics change. For a lookup
//! by key that is the plan wanted; a batch statement over arrays runs on the
//! batching tasks' connections, whose planner is offered index lookups only
//! (`batch::Planning::ByKey`), so no plan scans a whole table.

use diesel::{
    pg::Pg,
    query_builder::{AstPass, Query, QueryFragment, QueryId},
    result::QueryResult,
};

#[derive(Debug, Clone, Copy)]
pub struct Prepared<Q>(Q);

pub trait Prepare: Sized {
    /// This statement, kept prepared on each connection that runs it.
    fn prepared(self) -> Prepared<Self> {
        Prepared(self)
    }
}

impl<Q: QueryFragment<Pg>> Prepare for Q {}

impl<Q: QueryFragment<Pg>> QueryFragment<Pg> for Prepared<Q> {
    fn walk_ast<'b>(&'b self, pass: AstPass<'_, 'b, Pg>) -> QueryResult<()> {
        self.0.walk_ast(pass)
    }

    fn is_safe_to_cache_prepared(&self, _backend: &Pg) -> QueryResult<bool> {
        Ok(true)
    }

    fn is_noop(&self, backend: &Pg) -> QueryResult<bool> {
        self.0.is_noop(backend)
    }
}

/// No static id: the cache keys the statement by its SQL text.
impl<Q> QueryId for Prepared<Q> {
    type QueryId = ();
    const HAS_STATIC_QUERY_ID: bool = false;
}

impl<Q: Query> Query for Prepared<Q> {
    type SqlType = Q::SqlType;
}
