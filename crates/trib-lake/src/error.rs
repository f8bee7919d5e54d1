use std::fmt;

pub type Result<T, E = Error> = std::result::Result<T, E>;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The storage root in the settings is not a usable location.
    #[error("storage root `{root}` is not a valid location: {message}")]
    BadRoot { root: String, message: String },
    /// A table operation failed in delta-rs or the object store (often retryable).
    #[error("{operation} of table `{table}` failed: {source}")]
    Delta {
        operation: Operation,
        table: String,
        #[source]
        source: deltalake::DeltaTableError,
    },
    /// The table has columns the contract no longer declares.
    #[error("table `{table}` has columns the contract no longer declares: {}\nhint: removing a column is a breaking change; release it as a new major version, which gets a new table", columns.join(", "))]
    SchemaDrift { table: String, columns: Vec<String> },
    /// Arrow rejected data (a bug when the data came through validation).
    #[error("cannot prepare rows for `{table}`: {source}")]
    Arrow {
        table: String,
        #[source]
        source: deltalake::arrow::error::ArrowError,
    },
    /// A query over the table failed.
    #[error("query on `{table}` failed: {source}")]
    Query {
        table: String,
        #[source]
        source: deltalake::datafusion::error::DataFusionError,
    },
}

impl Error {
    /// Whether retrying the same operation may succeed (storage hiccups, commit races).
    pub fn is_retryable(&self) -> bool {
        match self {
            Error::Delta { source, .. } => matches!(
                source,
                deltalake::DeltaTableError::ObjectStore { .. }
                    | deltalake::DeltaTableError::Transaction { .. }
                    | deltalake::DeltaTableError::VersionAlreadyExists(_)
            ),
            _ => false,
        }
    }
}

/// What was being done when delta-rs failed.
#[derive(Debug, Clone, Copy)]
pub enum Operation {
    Open,
    Create,
    Append,
    Write,
    Merge,
    Read,
    TimeTravel,
    /// A step of table maintenance.
    Maintain(crate::maintain::Step),
}

impl fmt::Display for Operation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Operation::Open => "opening",
            Operation::Create => "creating",
            Operation::Append => "appending to",
            Operation::Write => "overwriting",
            Operation::Merge => "merging into",
            Operation::Read => "reading",
            Operation::TimeTravel => "time travel on",
            Operation::Maintain(step) => return write!(f, "maintenance step `{step}`"),
        })
    }
}
