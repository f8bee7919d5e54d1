//! What can go wrong on the read path, and whose it is to fix.

pub type Result<T, E = Error> = std::result::Result<T, E>;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The SQL does not parse.
    #[error("the query does not parse: {message}\nhint: {hint}")]
    Syntax { message: String, hint: &'static str },
    /// Anything but one read-only query.
    #[error("only one read-only query is allowed here, found {statement}\nhint: {hint}")]
    NotReadOnly { statement: String, hint: &'static str },
    /// A construct the sandbox refuses (table functions, file paths).
    #[error("{what} is not allowed in queries\nhint: {hint}")]
    Refused { what: String, hint: String },
    /// A relation that is neither a product nor a name the query defines.
    #[error("no product `{name}`\nhint: {hint}")]
    UnknownProduct { name: String, hint: String },
    /// A product the principal has no grant for.
    #[error(
        "`{principal}` may not read `{product}`\nhint: ask its owner `{owner}` for a grant (the contract's `access` list)"
    )]
    Forbidden {
        principal: String,
        product: String,
        owner: String,
    },
    /// The principal may not do this (act as another role, read the audit).
    #[error("`{principal}` may not {action}\nhint: {hint}")]
    NotPermitted {
        principal: String,
        action: String,
        hint: &'static str,
    },
    /// A time-travel point that does not exist or does not parse.
    #[error("cannot read `{product}` as of {at}: {message}\nhint: {hint}")]
    TimeTravel {
        product: String,
        at: String,
        message: String,
        hint: &'static str,
    },
    /// A product whose table has not been written yet.
    #[error("`{product}` has no data yet\nhint: ingest into it (`trib ingest`) or run it (`trib run`)")]
    NoData { product: String },
    /// A product version its owners retired: no longer served.
    #[error("`{product}@v{major}` was retired{since}\nhint: {hint}")]
    Retired {
        product: String,
        major: u64,
        since: String,
        hint: String,
    },
    /// One of the platform's own tables before anything wrote it.
    #[error(
        "`{table}` does not exist yet\nhint: `trib serve` and `trib slo --evaluate` write the trust tables; `trib quality` the quality results"
    )]
    NoSystemTable { table: String },
    /// DataFusion refused the query (unknown column, type mismatch): the user's to fix.
    #[error("{message}")]
    Plan { message: String },
    /// The query failed while running. The cause is logged under `id`, not returned:
    /// it may quote values of rows the caller may not see.
    #[error(
        "the query failed while running (error id {id})\nhint: the server log has the cause under this id; an admin sees it in the reply"
    )]
    Execution { id: String },
    #[error(
        "the query needed more than its {limit_mb} MiB memory limit\nhint: select fewer columns or rows, or raise `access.query_memory_mb` in trib.toml"
    )]
    MemoryLimit { limit_mb: u64 },
    #[error(
        "the query ran longer than its {seconds} s limit and was stopped\nhint: narrow it, or raise `access.query_timeout_s` in trib.toml"
    )]
    Timeout { seconds: u64 },
    /// A bearer token that is malformed or unknown.
    #[error("the token is not valid\nhint: create one with `trib token create`")]
    InvalidToken,
    #[error("token `{id}` was revoked\nhint: create a new one with `trib token create`")]
    RevokedToken { id: String },
    #[error("{message}\nhint: {hint}")]
    Token { message: String, hint: &'static str },
    #[error("cannot use `{}`: {source}", path.display())]
    Io {
        path: std::path::PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error(transparent)]
    Lake(#[from] trib_lake::Error),
    /// A bug: something that was checked turned out otherwise.
    #[error("`[access.engine]` in trib.toml: {message}\nhint: {hint}")]
    EngineOption { message: String, hint: String },
    #[error("internal error: {0}")]
    Internal(String),
}

impl Error {
    /// Whether the caller can fix this by changing the request.
    pub fn is_user_error(&self) -> bool {
        matches!(
            self,
            Error::Syntax { .. }
                | Error::NotReadOnly { .. }
                | Error::Refused { .. }
                | Error::UnknownProduct { .. }
                | Error::TimeTravel { .. }
                | Error::Plan { .. }
                | Error::MemoryLimit { .. }
                | Error::Timeout { .. }
                | Error::NoData { .. }
                | Error::NoSystemTable { .. }
                | Error::Retired { .. }
        )
    }

    /// Whether the caller lacks the right rather than made a mistake.
    pub fn is_denied(&self) -> bool {
        matches!(self, Error::Forbidden { .. } | Error::NotPermitted { .. })
    }

    /// Whether the caller is not who they claim.
    pub fn is_unauthenticated(&self) -> bool {
        matches!(self, Error::InvalidToken | Error::RevokedToken { .. })
    }
}
