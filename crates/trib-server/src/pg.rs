//! The Postgres wire-protocol door of the read API: `psql`, psycopg and BI tools connect
//! with an API token as the password and query products through the same gateway as
//! `POST /v1/sql`, audited as `QueryPath::Postgres`.
//!
//! ```text
//!   Startup ──► cleartext password = API token ──► TokenStore::authenticate ──► Principal
//!   Query, or Parse / Bind / Describe / Execute / Sync
//!      │  BEGIN, COMMIT, ROLLBACK, SET, SHOW, version() …   answered here; nothing runs
//!      └─ anything else ──► Gateway::query(principal, sql, Postgres) ──► Arrow ──► DataRows
//!         (pg_catalog and information_schema too: the gateway's catalog of what the
//!          caller may read, so `\dt`, `\d` and BI schema browsers list products)
//! ```
//!
//! The password travels in clear text: serve this on loopback, or behind TLS (pgwire's
//! `server-api-ring` feature plus a `TlsAcceptor` for `process_socket`, not wired here).

use crate::reads::SharedReads;
use arrow::array::{Array, ArrayRef, AsArray, RecordBatch};
use arrow::datatypes::{
    DataType, Date32Type, Date64Type, Decimal32Type, Decimal64Type, Decimal128Type, Decimal256Type, Float32Type,
    Float64Type, Int8Type, Int16Type, Int32Type, Int64Type, Schema, TimeUnit, TimestampMicrosecondType,
    TimestampMillisecondType, TimestampNanosecondType, TimestampSecondType, UInt8Type, UInt16Type, UInt32Type,
    UInt64Type,
};
use async_trait::async_trait;
use chrono::{DateTime, FixedOffset, NaiveDate, NaiveDateTime};
use futures::{Sink, SinkExt};
use pgwire::api::auth::{
    DefaultServerParameterProvider, StartupHandler, finish_authentication, protocol_negotiation,
    save_startup_parameters_to_metadata,
};
use pgwire::api::cancel::{CancelHandler, DefaultCancelHandler};
use pgwire::api::portal::{Format, Portal};
use pgwire::api::query::{ExtendedQueryHandler, SimpleQueryHandler};
use pgwire::api::results::{
    DataRowEncoder, DescribePortalResponse, DescribeStatementResponse, FieldFormat, FieldInfo, QueryResponse, Response,
    Tag,
};
use pgwire::api::stmt::{NoopQueryParser, StoredStatement};
use pgwire::api::store::PortalStore;
use pgwire::api::{
    ClientInfo, ClientPortalStore, ConnectionGuard, ConnectionHandle, ConnectionManager, METADATA_APPLICATION_NAME,
    METADATA_DATABASE, METADATA_USER, PgWireConnectionState, PgWireServerHandlers, PidSecretKeyGenerator,
    RandomPidSecretKeyGenerator, Type,
};
use pgwire::error::{ErrorInfo, PgWireError, PgWireResult};
use pgwire::messages::data::DataRow;
use pgwire::messages::response::TransactionStatus;
use pgwire::messages::startup::Authentication;
use pgwire::messages::{PgWireBackendMessage, PgWireFrontendMessage};
use pgwire::tokio::process_socket;
use std::any::Any;
use std::collections::BTreeMap;
use std::fmt::Debug;
use std::ops::Range;
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::task::JoinSet;
use trib_access::{Principal, QueryPath, QueryResult};

/// What clients see as the server version. libpq, psycopg and JDBC read the leading
/// `major.minor`; the suffix is for people.
const SERVER_VERSION: &str = "16.6 (Tributary)";
const SERVER_VERSION_NUM: &str = "160006";
/// How long open connections get to finish at shutdown before they are closed.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(5);
/// Pause after a failed `accept` (out of file descriptors), so the loop does not spin.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(100);

/// Serves the Postgres protocol on `listener` until `shutdown` resolves. Queries in
/// flight then get [`SHUTDOWN_GRACE`] to finish; their audit entries are written by the
/// gateway either way (see [`Backend::run`]).
pub async fn serve_pg(
    listener: TcpListener,
    reads: SharedReads,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let handlers = Arc::new(PgHandlers::new(reads));
    let mut connections = JoinSet::new();
    tokio::pin!(shutdown);
    loop {
        tokio::select! {
            () = &mut shutdown => break,
            accepted = listener.accept() => match accepted {
                Ok((socket, peer)) => {
                    let handlers = handlers.clone();
                    connections.spawn(async move {
                        // No TLS acceptor: an SSLRequest is answered `N` and the client goes on in clear.
                        if let Err(e) = process_socket(socket, None, handlers).await {
                            tracing::debug!(%peer, error = %e, "postgres connection ended with an error");
                        }
                    });
                }
                Err(e) => {
                    tracing::warn!(error = %e, "cannot accept a postgres connection");
                    tokio::time::sleep(ACCEPT_BACKOFF).await;
                }
            },
            // Reap finished connections so the set does not grow with every client.
            Some(joined) = connections.join_next(), if !connections.is_empty() => {
                if let Err(e) = joined && e.is_panic() {
                    tracing::error!(error = %e, "a postgres connection task panicked");
                }
            }
        }
    }
    let drained = tokio::time::timeout(SHUTDOWN_GRACE, async {
        while connections.join_next().await.is_some() {}
    });
    if drained.await.is_err() {
        tracing::info!(
            open = connections.len(),
            "closing postgres connections still open at shutdown"
        );
    }
    connections.shutdown().await;
    Ok(())
}

/// The handlers pgwire asks for, shared by every connection.
struct PgHandlers {
    auth: Arc<TokenAuth>,
    backend: Arc<Backend>,
    cancel: Arc<DefaultCancelHandler>,
}

impl PgHandlers {
    fn new(reads: SharedReads) -> Self {
        let connections = Arc::new(ConnectionManager::new());
        let mut parameters = DefaultServerParameterProvider::default();
        parameters.server_version = SERVER_VERSION.to_owned();
        parameters.is_superuser = false;
        parameters.default_transaction_read_only = true;
        Self {
            auth: Arc::new(TokenAuth {
                reads: reads.clone(),
                parameters,
                pids: RandomPidSecretKeyGenerator::default(),
                connections: connections.clone(),
            }),
            backend: Arc::new(Backend {
                reads,
                parser: Arc::new(NoopQueryParser),
            }),
            cancel: Arc::new(DefaultCancelHandler::new(connections)),
        }
    }
}

impl PgWireServerHandlers for PgHandlers {
    fn simple_query_handler(&self) -> Arc<impl SimpleQueryHandler> {
        self.backend.clone()
    }

    fn extended_query_handler(&self) -> Arc<impl ExtendedQueryHandler> {
        self.backend.clone()
    }

    fn startup_handler(&self) -> Arc<impl StartupHandler> {
        self.auth.clone()
    }

    fn cancel_handler(&self) -> Arc<impl CancelHandler> {
        self.cancel.clone()
    }
}

// ---------------------------------------------------------------------------------------
// Login: the password is the token; the user name is only logged.
// ---------------------------------------------------------------------------------------

/// Cleartext password login where the password is an API token. pgwire's own
/// `CleartextPasswordAuthStartupHandler` cannot be used: its `AuthSource` must return
/// the expected password for a user name, and a token is found by its own id, not by
/// the user name the client sends.
struct TokenAuth {
    reads: SharedReads,
    parameters: DefaultServerParameterProvider,
    pids: RandomPidSecretKeyGenerator,
    connections: Arc<ConnectionManager>,
}

#[async_trait]
impl StartupHandler for TokenAuth {
    async fn on_startup<C>(&self, client: &mut C, message: PgWireFrontendMessage) -> PgWireResult<()>
    where
        C: ClientInfo + Sink<PgWireBackendMessage> + Unpin + Send + Sync,
        C::Error: Debug,
        PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
    {
        match message {
            PgWireFrontendMessage::Startup(ref startup) => {
                protocol_negotiation(client, startup).await?;
                save_startup_parameters_to_metadata(client, startup);
                client.set_state(PgWireConnectionState::AuthenticationInProgress);
                client
                    .send(PgWireBackendMessage::Authentication(Authentication::CleartextPassword))
                    .await?;
            }
            PgWireFrontendMessage::PasswordMessageFamily(password) => {
                let token = password.into_password()?.password;
                let principal = self
                    .reads
                    .tokens()
                    .authenticate(token.trim(), self.reads.gateway().settings())
                    .map_err(login_error)?;
                tracing::info!(
                    principal = %principal.name,
                    user = client.metadata().get(METADATA_USER).map(String::as_str).unwrap_or_default(),
                    peer = %client.socket_addr(),
                    "postgres login"
                );
                client.session_extensions().insert(principal);
                let (pid, secret_key) = self.pids.generate(&*client);
                client.set_pid_and_secret_key(pid, secret_key.clone());
                // What pgwire's own handlers do for cancel support: the handle lets a
                // CancelRequest interrupt the wait for a query, the guard unregisters the
                // connection when it closes.
                let (handle, guard) = self.connections.register(pid, secret_key);
                client.session_extensions().insert::<Arc<ConnectionHandle>>(handle);
                client.session_extensions().insert::<ConnectionGuard>(guard);
                finish_authentication(client, &self.parameters).await?;
            }
            _ => {}
        }
        Ok(())
    }
}

fn login_error(e: trib_access::Error) -> PgWireError {
    use trib_access::Error as E;
    match e {
        e @ (E::InvalidToken | E::RevokedToken { .. }) => {
            let text = e.to_string();
            let (message, hint) = split_hint(&text);
            error("FATAL", "28P01", message, hint)
        }
        other => {
            tracing::error!(error = %other, "cannot check a postgres login");
            error(
                "FATAL",
                "XX000",
                "the login could not be checked on the server",
                Some("the server log has the cause; retry later"),
            )
        }
    }
}

/// The principal the connection logged in as.
fn principal<C: ClientInfo>(client: &C) -> PgWireResult<Arc<Principal>> {
    client
        .session_extensions()
        .get::<Principal>()
        .ok_or_else(|| error("FATAL", "28000", "the connection has not logged in", None))
}

// ---------------------------------------------------------------------------------------
// Queries
// ---------------------------------------------------------------------------------------

struct Backend {
    reads: SharedReads,
    /// Statements are kept as text: the gateway parses (and refuses) them itself.
    parser: Arc<NoopQueryParser>,
}

impl Backend {
    /// Runs one statement through the gateway. Spawned, so that a cancel request or a
    /// closed connection, which drop pgwire's future, cannot drop a query between its
    /// run and its audit entry; the query still ends at the gateway's own timeout.
    async fn run(&self, principal: &Principal, sql: &str) -> PgWireResult<QueryResult> {
        let reads = self.reads.clone();
        let principal = principal.clone();
        let sql = sql.to_owned();
        let query = tokio::spawn(async move { reads.query(&principal, &sql, QueryPath::Postgres).await });
        match query.await {
            Ok(result) => result.map_err(gateway_error),
            Err(e) => {
                tracing::error!(error = %e, "a postgres query task failed");
                Err(error("ERROR", "XX000", "the query failed on the server", None))
            }
        }
    }

    /// One statement of a simple-protocol query string.
    async fn simple_statement<C>(
        &self,
        client: &mut C,
        principal: &Principal,
        statement: &str,
    ) -> PgWireResult<Response>
    where
        C: ClientInfo + Sink<PgWireBackendMessage> + Unpin + Send,
        C::Error: Debug,
        PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
    {
        let kind = classify(statement)?;
        if let Some(response) = local_response(client, principal, &kind, &Format::UnifiedText)? {
            return Ok(response);
        }
        let result = self.run(principal, statement).await?;
        send_warnings(client, &result.warnings).await?;
        Ok(query_response(result, &Format::UnifiedText))
    }
}

#[async_trait]
impl SimpleQueryHandler for Backend {
    async fn do_query<C>(&self, client: &mut C, query: &str) -> PgWireResult<Vec<Response>>
    where
        C: ClientInfo + ClientPortalStore + Sink<PgWireBackendMessage> + Unpin + Send + Sync,
        C::PortalStore: PortalStore,
        C::Error: Debug,
        PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
    {
        let principal = principal(client)?;
        // The gateway takes one statement at a time; psql scripts send several in one
        // string. Each runs (and is audited) on its own; as in Postgres, the first that
        // fails ends the string and the rest do not run.
        let mut responses = Vec::new();
        for statement in split_statements(query) {
            match self.simple_statement(client, &principal, statement).await {
                Ok(response) => responses.push(response),
                Err(e) => {
                    responses.push(Response::Error(Box::new(ErrorInfo::from(e))));
                    break;
                }
            }
        }
        if responses.is_empty() {
            // Only comments, such as a driver's `-- ping`.
            responses.push(Response::EmptyQuery);
        }
        Ok(responses)
    }
}

#[async_trait]
impl ExtendedQueryHandler for Backend {
    type Statement = String;
    type QueryParser = NoopQueryParser;

    fn query_parser(&self) -> Arc<Self::QueryParser> {
        self.parser.clone()
    }

    /// Describe of a prepared statement (JDBC, asyncpg, tokio-postgres; not libpq's
    /// `PQexecParams`). Parameters not typed by the client are reported as `text`, so
    /// clients send them as text. The result columns come from running the statement
    /// under `LIMIT 0` with NULL parameters, which plans but reads no rows; a plan-only
    /// `Gateway::describe` would be cheaper and keep these probes out of the audit.
    async fn do_describe_statement<C>(
        &self,
        client: &mut C,
        target: &StoredStatement<Self::Statement>,
    ) -> PgWireResult<DescribeStatementResponse>
    where
        C: ClientInfo + ClientPortalStore + Sink<PgWireBackendMessage> + Unpin + Send + Sync,
        C::PortalStore: PortalStore<Statement = Self::Statement>,
        C::Error: Debug,
        PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
    {
        let principal = principal(client)?;
        let sql = single_statement(&target.statement)?;
        let kind = classify(sql)?;
        if let Some(fields) = local_fields(&kind, &Format::UnifiedText)? {
            return Ok(DescribeStatementResponse::new(vec![], fields));
        }
        let count = parameter_count(sql).max(target.parameter_types.len());
        let types = (0..count)
            .map(|i| target.parameter_types.get(i).cloned().flatten().unwrap_or(Type::TEXT))
            .collect();
        let probe = format!(
            "SELECT * FROM ({}) AS _trib_describe LIMIT 0",
            substitute(sql, &vec!["NULL".to_owned(); count])?
        );
        let result = self.run(&principal, &probe).await?;
        Ok(DescribeStatementResponse::new(
            types,
            result_fields(&result.schema, &Format::UnifiedText),
        ))
    }

    /// Describe of a bound portal, as libpq clients (psql, psycopg) send before each
    /// Execute. The columns are only known once the query is planned, so it runs here and
    /// its answer is kept for the Execute of the same portal: one run, one audit entry.
    async fn do_describe_portal<C>(
        &self,
        client: &mut C,
        target: &Portal<Self::Statement>,
    ) -> PgWireResult<DescribePortalResponse>
    where
        C: ClientInfo + ClientPortalStore + Sink<PgWireBackendMessage> + Unpin + Send + Sync,
        C::PortalStore: PortalStore<Statement = Self::Statement>,
        C::Error: Debug,
        PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
    {
        let principal = principal(client)?;
        let sql = single_statement(&target.statement.statement)?;
        let kind = classify(sql)?;
        if let Some(fields) = local_fields(&kind, &target.result_column_format)? {
            return Ok(DescribePortalResponse::new(fields));
        }
        let bound = bind(target, sql)?;
        let result = self.run(&principal, &bound).await?;
        let fields = result_fields(&result.schema, &target.result_column_format);
        remember(client, target, bound, result);
        Ok(DescribePortalResponse::new(fields))
    }

    async fn do_query<C>(
        &self,
        client: &mut C,
        portal: &Portal<Self::Statement>,
        _max_rows: usize,
    ) -> PgWireResult<Response>
    where
        C: ClientInfo + ClientPortalStore + Sink<PgWireBackendMessage> + Unpin + Send + Sync,
        C::PortalStore: PortalStore<Statement = Self::Statement>,
        C::Error: Debug,
        PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
    {
        // `max_rows` (portal suspension) is handled by pgwire over the response stream.
        let principal = principal(client)?;
        let sql = single_statement(&portal.statement.statement)?;
        let kind = classify(sql)?;
        if let Some(response) = local_response(client, &principal, &kind, &portal.result_column_format)? {
            return Ok(response);
        }
        let bound = bind(portal, sql)?;
        let result = match recall(client, portal, &bound) {
            Some(result) => result,
            None => self.run(&principal, &bound).await?,
        };
        send_warnings(client, &result.warnings).await?;
        Ok(query_response(result, &portal.result_column_format))
    }
}

/// The gateway's warnings (a deprecated product, masked columns) as NOTICEs, which psql
/// prints and drivers log.
async fn send_warnings<C>(client: &mut C, warnings: &[String]) -> PgWireResult<()>
where
    C: Sink<PgWireBackendMessage> + Unpin + Send,
    C::Error: Debug,
    PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
{
    for warning in warnings {
        let notice = ErrorInfo::new("WARNING".to_owned(), "01000".to_owned(), warning.clone());
        client.feed(PgWireBackendMessage::NoticeResponse(notice.into())).await?;
    }
    Ok(())
}

/// The statement of a Parse: Postgres refuses several in one prepared statement.
fn single_statement(sql: &str) -> PgWireResult<&str> {
    match split_statements(sql).as_slice() {
        [] => Ok(""),
        [one] => Ok(*one),
        _ => Err(error(
            "ERROR",
            "42601",
            "cannot insert multiple commands into a prepared statement",
            None,
        )),
    }
}

// ---------------------------------------------------------------------------------------
// The answer a portal's Describe computed, kept for its Execute
// ---------------------------------------------------------------------------------------

#[derive(Default)]
struct DescribedPortal(Mutex<Option<Described>>);

struct Described {
    /// The portal's execution state, which pgwire allocates once per Bind: the same
    /// allocation means the same portal, and the weak reference keeps the address from
    /// being reused by a later portal while it is held.
    portal: Weak<dyn Any + Send + Sync>,
    sql: String,
    result: QueryResult,
}

fn portal_identity(portal: &Portal<String>) -> Weak<dyn Any + Send + Sync> {
    let state: Arc<dyn Any + Send + Sync> = portal.state();
    Arc::downgrade(&state)
}

/// Keeps one described answer per connection: libpq sends Bind, Describe, Execute in a
/// row, so a newer Describe means the older answer will not be asked for.
fn remember<C: ClientInfo>(client: &C, portal: &Portal<String>, sql: String, result: QueryResult) {
    let memo = client.session_extensions().get_or_insert_with(DescribedPortal::default);
    let mut slot = memo.0.lock().unwrap_or_else(|e| e.into_inner());
    *slot = Some(Described {
        portal: portal_identity(portal),
        sql,
        result,
    });
}

/// The answer the Describe of this very portal computed, if any; taken, so a second
/// Execute of the portal runs the query again.
fn recall<C: ClientInfo>(client: &C, portal: &Portal<String>, sql: &str) -> Option<QueryResult> {
    let memo = client.session_extensions().get::<DescribedPortal>()?;
    let identity = portal_identity(portal);
    let mut slot = memo.0.lock().unwrap_or_else(|e| e.into_inner());
    slot.take_if(|d| Weak::ptr_eq(&d.portal, &identity) && d.sql == sql)
        .map(|d| d.result)
}

// ---------------------------------------------------------------------------------------
// Statements answered without the gateway
// ---------------------------------------------------------------------------------------

/// What a statement is, decided before anything runs.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Kind {
    Empty,
    Begin,
    Commit,
    Rollback,
    /// Accepted and answered with this command tag; changes nothing.
    Command(String),
    Set {
        name: String,
        value: String,
    },
    Reset(Option<String>),
    Show(String),
    Fixed(Fixed),
    Gateway,
}

/// Probes drivers and ORMs send on connect (SQLAlchemy: `select pg_catalog.version()`,
/// `select current_schema()`), answered as Postgres would.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Fixed {
    Version,
    CurrentSchema,
    CurrentDatabase,
    CurrentUser,
    SessionUser,
}

const FIXED: &[(&str, Fixed)] = &[
    ("select version()", Fixed::Version),
    ("select pg_catalog.version()", Fixed::Version),
    ("select current_schema()", Fixed::CurrentSchema),
    ("select current_schema", Fixed::CurrentSchema),
    ("select pg_catalog.current_schema()", Fixed::CurrentSchema),
    ("select current_database()", Fixed::CurrentDatabase),
    ("select pg_catalog.current_database()", Fixed::CurrentDatabase),
    ("select current_user", Fixed::CurrentUser),
    ("select user", Fixed::CurrentUser),
    ("select session_user", Fixed::SessionUser),
];

fn classify(statement: &str) -> PgWireResult<Kind> {
    let clean = clean_text(statement);
    if clean.is_empty() {
        return Ok(Kind::Empty);
    }
    let lower = clean.to_ascii_lowercase();
    let words: Vec<&str> = lower.split_whitespace().collect();
    let kind = match words.as_slice() {
        ["begin", ..] | ["start", "transaction", ..] => Kind::Begin,
        ["commit" | "end", ..] => Kind::Commit,
        ["rollback" | "abort", "to", ..] => Kind::Command("ROLLBACK".to_owned()),
        ["rollback" | "abort", ..] => Kind::Rollback,
        ["savepoint", ..] => Kind::Command("SAVEPOINT".to_owned()),
        ["release", ..] => Kind::Command("RELEASE".to_owned()),
        ["set", ..] => parse_set(&clean)?,
        ["reset", "all"] => Kind::Reset(None),
        ["reset", name] => Kind::Reset(Some(setting_name(name))),
        ["show", rest @ ..] => Kind::Show(show_name(rest)?),
        ["discard", rest @ ..] => Kind::Command(format!("DISCARD {}", rest.join(" ").to_ascii_uppercase())),
        ["deallocate", ..] => Kind::Command("DEALLOCATE".to_owned()),
        _ => {
            let collapsed = words.join(" ");
            match FIXED.iter().find(|(sql, _)| *sql == collapsed) {
                Some((_, fixed)) => Kind::Fixed(*fixed),
                None => Kind::Gateway,
            }
        }
    };
    Ok(kind)
}

/// `SET [SESSION | LOCAL] name {TO | =} value`, `SET TIME ZONE …`, `SET NAMES …`.
/// Values are remembered for SHOW; none changes how queries run.
fn parse_set(clean: &str) -> PgWireResult<Kind> {
    let mut rest = clean.get(3..).unwrap_or_default().trim_start();
    for scope in ["session ", "local "] {
        if rest.to_ascii_lowercase().starts_with(scope) {
            rest = rest[scope.len()..].trim_start();
        }
    }
    let lower = rest.to_ascii_lowercase();
    if lower.starts_with("role") || lower.starts_with("session authorization") {
        return Err(error(
            "ERROR",
            "0A000",
            "the identity of a connection is its token",
            Some("connect with a token that holds the role"),
        ));
    }
    if lower.starts_with("transaction") || lower.starts_with("characteristics") {
        return Ok(Kind::Command("SET".to_owned()));
    }
    let (name, value) = if lower.starts_with("time zone") {
        ("timezone".to_owned(), &rest["time zone".len()..])
    } else if lower.starts_with("names") {
        ("client_encoding".to_owned(), &rest["names".len()..])
    } else {
        // Whichever comes first: `SET x TO 'a=b'` has an `=` inside its value.
        let eq = lower.find('=').map(|i| (i, 1));
        let to = lower.find(" to ").map(|i| (i, 4));
        match [eq, to].into_iter().flatten().min_by_key(|(i, _)| *i) {
            Some((i, len)) => (setting_name(&rest[..i]), &rest[i + len..]),
            None => return Err(error("ERROR", "42601", format!("cannot read `SET {rest}`"), None)),
        }
    };
    let value = unquote(value.trim());
    if value.eq_ignore_ascii_case("default") {
        return Ok(Kind::Reset(Some(name)));
    }
    if name == "client_encoding" && !["utf8", "utf-8", "unicode"].contains(&value.to_ascii_lowercase().as_str()) {
        return Err(error("ERROR", "0A000", "this server speaks UTF8 only", None));
    }
    Ok(Kind::Set { name, value })
}

fn setting_name(name: &str) -> String {
    name.trim().trim_matches('"').to_ascii_lowercase()
}

fn show_name(words: &[&str]) -> PgWireResult<String> {
    Ok(match words {
        ["transaction", "isolation", "level"] => "transaction_isolation".to_owned(),
        ["time", "zone"] => "timezone".to_owned(),
        ["session", "authorization"] => "session_authorization".to_owned(),
        ["all"] => return Err(error("ERROR", "0A000", "SHOW ALL is not supported", None)),
        [name] => setting_name(name),
        _ => return Err(error("ERROR", "42601", "SHOW takes one parameter name", None)),
    })
}

/// A `'quoted'` value without its quotes, `''` read as `'`.
fn unquote(value: &str) -> String {
    match value.strip_prefix('\'').and_then(|v| v.strip_suffix('\'')) {
        Some(inner) => inner.replace("''", "'"),
        None => value.to_owned(),
    }
}

/// `SET` values of the connection, echoed by `SHOW`.
#[derive(Default)]
struct SessionVars(Mutex<BTreeMap<String, String>>);

fn session_vars<C: ClientInfo>(client: &C) -> Arc<SessionVars> {
    client.session_extensions().get_or_insert_with(SessionVars::default)
}

impl SessionVars {
    fn vars(&self) -> std::sync::MutexGuard<'_, BTreeMap<String, String>> {
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }
}

fn show_value<C: ClientInfo>(client: &C, name: &str) -> PgWireResult<String> {
    if let Some(value) = session_vars(client).vars().get(name) {
        return Ok(value.clone());
    }
    let value = match name {
        "server_version" => SERVER_VERSION,
        "server_version_num" => SERVER_VERSION_NUM,
        "server_encoding" | "client_encoding" => "UTF8",
        // pgwire's defaults, which it also reports in ParameterStatus at login.
        "datestyle" => "ISO, YMD",
        "timezone" => "Etc/UTC",
        "intervalstyle" => "postgres",
        "standard_conforming_strings" | "integer_datetimes" => "on",
        "transaction_isolation" | "default_transaction_isolation" => "read committed",
        "transaction_read_only" | "default_transaction_read_only" => "on",
        "search_path" => "public",
        "max_identifier_length" => "63",
        "is_superuser" => "off",
        "extra_float_digits" => "1",
        "application_name" => {
            return Ok(client
                .metadata()
                .get(METADATA_APPLICATION_NAME)
                .cloned()
                .unwrap_or_default());
        }
        _ => {
            return Err(error(
                "ERROR",
                "42704",
                format!("unrecognized configuration parameter \"{name}\""),
                None,
            ));
        }
    };
    Ok(value.to_owned())
}

fn fixed_answer<C: ClientInfo>(client: &C, principal: &Principal, fixed: Fixed) -> (&'static str, String) {
    match fixed {
        Fixed::Version => (
            "version",
            format!("PostgreSQL {SERVER_VERSION}, the read-only query gateway of Tributary"),
        ),
        Fixed::CurrentSchema => ("current_schema", "public".to_owned()),
        Fixed::CurrentDatabase => (
            "current_database",
            client
                .metadata()
                .get(METADATA_DATABASE)
                .cloned()
                .unwrap_or_else(|| "tributary".to_owned()),
        ),
        Fixed::CurrentUser => ("current_user", principal.name.clone()),
        Fixed::SessionUser => ("session_user", principal.name.clone()),
    }
}

/// The answer to a statement that does not go to the gateway; `None` when it does.
///
/// Transactions are acknowledged, not implemented: every statement reads the newest
/// table versions, so `BEGIN … COMMIT` gives no snapshot across statements. It exists
/// because psycopg (outside autocommit), JDBC and pools send it.
fn local_response<C: ClientInfo>(
    client: &C,
    principal: &Principal,
    kind: &Kind,
    formats: &Format,
) -> PgWireResult<Option<Response>> {
    let failed = matches!(client.transaction_status(), TransactionStatus::Error);
    if failed && !matches!(kind, Kind::Empty | Kind::Commit | Kind::Rollback) {
        return Err(error(
            "ERROR",
            "25P02",
            "current transaction is aborted, commands ignored until end of transaction block",
            None,
        ));
    }
    let response = match kind {
        Kind::Empty => Response::EmptyQuery,
        Kind::Begin => Response::TransactionStart(Tag::new("BEGIN")),
        // Postgres answers COMMIT of a failed transaction with ROLLBACK.
        Kind::Commit => Response::TransactionEnd(Tag::new(if failed { "ROLLBACK" } else { "COMMIT" })),
        Kind::Rollback => Response::TransactionEnd(Tag::new("ROLLBACK")),
        Kind::Command(tag) => Response::Execution(Tag::new(tag)),
        Kind::Set { name, value } => {
            session_vars(client).vars().insert(name.clone(), value.clone());
            Response::Execution(Tag::new("SET"))
        }
        Kind::Reset(name) => {
            let vars = session_vars(client);
            if let Some(name) = name {
                vars.vars().remove(name);
            } else {
                vars.vars().clear();
            }
            Response::Execution(Tag::new("RESET"))
        }
        Kind::Show(name) => text_response(name, show_value(client, name)?, "SHOW", formats)?,
        Kind::Fixed(fixed) => {
            let (column, value) = fixed_answer(client, principal, *fixed);
            text_response(column, value, "SELECT", formats)?
        }
        Kind::Gateway => return Ok(None),
    };
    Ok(Some(response))
}

/// The columns a local statement answers with (none for commands); `None` when the
/// statement goes to the gateway.
fn local_fields(kind: &Kind, formats: &Format) -> PgWireResult<Option<Vec<FieldInfo>>> {
    Ok(match kind {
        Kind::Show(name) => Some(vec![text_field(name, formats)]),
        Kind::Fixed(fixed) => {
            let column = match fixed {
                Fixed::Version => "version",
                Fixed::CurrentSchema => "current_schema",
                Fixed::CurrentDatabase => "current_database",
                Fixed::CurrentUser => "current_user",
                Fixed::SessionUser => "session_user",
            };
            Some(vec![text_field(column, formats)])
        }
        Kind::Gateway => None,
        _ => Some(vec![]),
    })
}

fn text_field(name: &str, formats: &Format) -> FieldInfo {
    FieldInfo::new(name.to_owned(), None, None, Type::TEXT, column_format(formats, 0))
}

fn text_response(column: &str, value: String, tag: &str, formats: &Format) -> PgWireResult<Response> {
    let fields = Arc::new(vec![text_field(column, formats)]);
    let mut encoder = DataRowEncoder::new(fields.clone());
    encoder.encode_field(&value)?;
    let mut response = QueryResponse::new(fields, futures::stream::iter(vec![Ok(encoder.take_row())]));
    response.set_command_tag(tag);
    Ok(Response::Query(response))
}

// ---------------------------------------------------------------------------------------
// Parameters: bound into the SQL text as literals, since the gateway takes text
// ---------------------------------------------------------------------------------------

/// The portal's statement with `$n` replaced by its bound value as a SQL literal.
/// Literals are built from decoded values (numbers re-printed, strings quoted with `''`),
/// never pasted, so a value cannot change the statement's structure.
fn bind(portal: &Portal<String>, sql: &str) -> PgWireResult<String> {
    let literals = (0..portal.parameter_len())
        .map(|i| parameter_literal(portal, i))
        .collect::<PgWireResult<Vec<_>>>()?;
    substitute(sql, &literals)
}

fn parameter_literal(portal: &Portal<String>, idx: usize) -> PgWireResult<String> {
    let ty = portal
        .statement
        .parameter_types
        .get(idx)
        .cloned()
        .flatten()
        .unwrap_or(Type::UNKNOWN);
    let Some(raw) = portal
        .parameters
        .get(idx)
        .ok_or(PgWireError::ParameterIndexOutOfBound(idx))?
    else {
        return Ok("NULL".to_owned());
    };
    let invalid = || {
        error(
            "ERROR",
            "22P02",
            format!("parameter ${} is not a valid {}", idx + 1, ty.name()),
            None,
        )
    };
    if portal.parameter_format.is_binary(idx) {
        // psycopg sends Python ints in binary; decode by the declared type.
        let literal = match ty {
            Type::INT2 => portal.parameter::<i16>(idx, &ty)?.map(number),
            Type::INT4 => portal.parameter::<i32>(idx, &ty)?.map(number),
            Type::INT8 => portal.parameter::<i64>(idx, &ty)?.map(number),
            Type::FLOAT4 => portal.parameter::<f32>(idx, &ty)?.map(|v| float(f64::from(v))),
            Type::FLOAT8 => portal.parameter::<f64>(idx, &ty)?.map(float),
            Type::BOOL => portal
                .parameter::<bool>(idx, &ty)?
                .map(|v| if v { "TRUE" } else { "FALSE" }.to_owned()),
            Type::NUMERIC => Some(
                numeric_from_binary(raw)
                    .and_then(|text| numeric_literal(&text))
                    .ok_or_else(invalid)?,
            ),
            Type::DATE => portal
                .parameter::<NaiveDate>(idx, &ty)?
                .map(|d| cast(&d.to_string(), "DATE")),
            Type::TIMESTAMP => portal
                .parameter::<NaiveDateTime>(idx, &ty)?
                .map(|t| cast(&t.to_string(), "TIMESTAMP")),
            Type::TIMESTAMPTZ => portal
                .parameter::<DateTime<FixedOffset>>(idx, &ty)?
                .map(|t| cast(&t.to_rfc3339(), "TIMESTAMP")),
            Type::TEXT | Type::VARCHAR | Type::BPCHAR | Type::NAME | Type::UNKNOWN => {
                portal.parameter::<String>(idx, &ty)?.map(|s| quote(&s))
            }
            _ => {
                return Err(error(
                    "ERROR",
                    "0A000",
                    format!("binary parameters of type {} are not supported", ty.name()),
                    Some("send this parameter in text format"),
                ));
            }
        };
        return Ok(literal.unwrap_or_else(|| "NULL".to_owned()));
    }
    let text = std::str::from_utf8(raw)
        .map_err(|_| error("ERROR", "22021", format!("parameter ${} is not UTF-8", idx + 1), None))?;
    match ty {
        Type::INT2 | Type::INT4 | Type::INT8 => text.trim().parse::<i64>().map(number).map_err(|_| invalid()),
        Type::FLOAT4 | Type::FLOAT8 => text.trim().parse::<f64>().map(float).map_err(|_| invalid()),
        Type::NUMERIC => numeric_literal(text).ok_or_else(invalid),
        Type::BOOL => match text.trim().to_ascii_lowercase().as_str() {
            "t" | "true" | "y" | "yes" | "on" | "1" => Ok("TRUE".to_owned()),
            "f" | "false" | "n" | "no" | "off" | "0" => Ok("FALSE".to_owned()),
            _ => Err(invalid()),
        },
        Type::DATE => Ok(cast(text, "DATE")),
        // DataFusion converts an offset in the text to UTC.
        Type::TIMESTAMP | Type::TIMESTAMPTZ => Ok(cast(text, "TIMESTAMP")),
        // Text and untyped parameters (psycopg sends Python str untyped): a string
        // literal, which DataFusion coerces to the column it meets.
        _ => Ok(quote(text)),
    }
}

fn quote(text: &str) -> String {
    format!("'{}'", text.replace('\'', "''"))
}

fn cast(text: &str, sql_type: &str) -> String {
    format!("CAST({} AS {sql_type})", quote(text))
}

/// Negative numbers in parentheses: `a-$1` with -5 must not become the comment `a--5`.
fn number(value: impl std::fmt::Display) -> String {
    let text = value.to_string();
    if text.starts_with('-') {
        format!("({text})")
    } else {
        text
    }
}

fn float(value: f64) -> String {
    if value.is_nan() {
        "CAST('NaN' AS DOUBLE)".to_owned()
    } else if value.is_infinite() {
        format!(
            "CAST('{}' AS DOUBLE)",
            if value > 0.0 { "Infinity" } else { "-Infinity" }
        )
    } else {
        number(format!("{value:?}"))
    }
}

/// A decimal as an exact DECIMAL literal (a bare `1.5` would be a DOUBLE in DataFusion).
fn numeric_literal(text: &str) -> Option<String> {
    let text = text.trim();
    let unsigned = text.strip_prefix(['-', '+']).unwrap_or(text);
    let (int, frac) = unsigned.split_once('.').unwrap_or((unsigned, ""));
    let all_digits = int.bytes().chain(frac.bytes()).all(|c| c.is_ascii_digit());
    if (int.is_empty() && frac.is_empty()) || !all_digits {
        return None;
    }
    let scale = frac.len();
    let precision = (int.trim_start_matches('0').len() + scale).max(1);
    (precision <= 38).then(|| format!("CAST('{text}' AS DECIMAL({precision}, {scale}))"))
}

/// The text of a NUMERIC in Postgres' binary format: digit count, weight (of the first
/// base-10000 digit), sign, display scale, then base-10000 digits.
fn numeric_from_binary(raw: &[u8]) -> Option<String> {
    let word = |i: usize| raw.get(i * 2..i * 2 + 2).map(|b| u16::from_be_bytes([b[0], b[1]]));
    let ndigits = usize::from(word(0)?);
    let weight = i32::from(word(1)? as i16);
    let negative = match word(2)? {
        0x0000 => false,
        0x4000 => true,
        _ => return None, // NaN and infinities have no DECIMAL
    };
    let scale = usize::from(word(3)?);
    let digits = (0..ndigits).map(|i| word(4 + i)).collect::<Option<Vec<u16>>>()?;
    let digit = |position: i32| -> u16 {
        usize::try_from(weight - position)
            .ok()
            .and_then(|i| digits.get(i).copied())
            .unwrap_or(0)
    };
    let mut text = String::new();
    if negative {
        text.push('-');
    }
    if weight < 0 {
        text.push('0');
    } else {
        text.push_str(&digit(weight).to_string());
        for position in (0..weight).rev() {
            text.push_str(&format!("{:04}", digit(position)));
        }
    }
    if scale > 0 {
        let mut fraction = String::new();
        let mut position = -1;
        while fraction.len() < scale {
            fraction.push_str(&format!("{:04}", digit(position)));
            position -= 1;
        }
        fraction.truncate(scale);
        text.push('.');
        text.push_str(&fraction);
    }
    Some(text)
}

// ---------------------------------------------------------------------------------------
// A small SQL lexer: enough to split statements, find `$n` and skip literals and comments
// ---------------------------------------------------------------------------------------

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Piece {
    /// SQL outside literals and comments.
    Code,
    /// A string literal, quoted identifier or dollar-quoted string.
    Quoted,
    Comment,
    /// A `$n` placeholder.
    Param(usize),
    Semicolon,
}

/// Cuts `sql` into pieces. Every cut is at an ASCII character, so the ranges slice
/// `sql` safely.
fn lex(sql: &str) -> Vec<(Piece, Range<usize>)> {
    let b = sql.as_bytes();
    let mut pieces = Vec::new();
    let mut code_from = 0;
    let mut i = 0;
    while i < b.len() {
        let found = match b[i] {
            b'\'' => Some((Piece::Quoted, quoted_end(b, i, b'\'', is_escape_string(b, i)))),
            b'"' => Some((Piece::Quoted, quoted_end(b, i, b'"', false))),
            b'-' if b.get(i + 1) == Some(&b'-') => Some((
                Piece::Comment,
                b[i..].iter().position(|&c| c == b'\n').map_or(b.len(), |p| i + p),
            )),
            b'/' if b.get(i + 1) == Some(&b'*') => Some((Piece::Comment, block_comment_end(b, i))),
            b'$' if !(i > 0 && (is_identifier_byte(b[i - 1]) || b[i - 1] == b'$')) => dollar(b, i),
            b';' => Some((Piece::Semicolon, i + 1)),
            _ => None,
        };
        match found {
            Some((piece, end)) => {
                if code_from < i {
                    pieces.push((Piece::Code, code_from..i));
                }
                pieces.push((piece, i..end));
                i = end;
                code_from = end;
            }
            None => i += 1,
        }
    }
    if code_from < b.len() {
        pieces.push((Piece::Code, code_from..b.len()));
    }
    pieces
}

fn is_identifier_byte(c: u8) -> bool {
    c.is_ascii_alphanumeric() || c == b'_' || c >= 0x80
}

/// `E'…'`: a string in which backslash escapes the next character.
fn is_escape_string(b: &[u8], quote: usize) -> bool {
    quote > 0 && matches!(b[quote - 1], b'e' | b'E') && !(quote > 1 && is_identifier_byte(b[quote - 2]))
}

fn quoted_end(b: &[u8], start: usize, quote: u8, backslash: bool) -> usize {
    let mut j = start + 1;
    while j < b.len() {
        if backslash && b[j] == b'\\' {
            j += 2;
        } else if b[j] == quote {
            if b.get(j + 1) == Some(&quote) {
                j += 2;
            } else {
                return j + 1;
            }
        } else {
            j += 1;
        }
    }
    b.len()
}

fn block_comment_end(b: &[u8], start: usize) -> usize {
    let mut depth = 0usize;
    let mut j = start;
    while j + 1 < b.len() {
        match (b[j], b[j + 1]) {
            (b'/', b'*') => {
                depth += 1;
                j += 2;
            }
            (b'*', b'/') => {
                depth = depth.saturating_sub(1);
                j += 2;
                if depth == 0 {
                    return j;
                }
            }
            _ => j += 1,
        }
    }
    b.len()
}

/// `$n`, or a `$tag$ … $tag$` string; a lone `$` is code.
fn dollar(b: &[u8], start: usize) -> Option<(Piece, usize)> {
    let mut j = start + 1;
    if b.get(j).is_some_and(u8::is_ascii_digit) {
        while b.get(j).is_some_and(u8::is_ascii_digit) {
            j += 1;
        }
        let n = std::str::from_utf8(&b[start + 1..j])
            .ok()
            .and_then(|digits| digits.parse().ok())
            .unwrap_or(usize::MAX);
        return Some((Piece::Param(n), j));
    }
    while b.get(j).is_some_and(|&c| is_identifier_byte(c)) {
        j += 1;
    }
    if b.get(j) != Some(&b'$') {
        return None;
    }
    let tag = &b[start..=j];
    let body = j + 1;
    let end = b[body..]
        .windows(tag.len())
        .position(|w| w == tag)
        .map_or(b.len(), |p| body + p + tag.len());
    Some((Piece::Quoted, end))
}

/// The statements of a query string, without their `;` and skipping empty ones.
fn split_statements(sql: &str) -> Vec<&str> {
    let mut statements = Vec::new();
    let mut from = 0;
    let mut has_content = false;
    for (piece, range) in lex(sql) {
        match piece {
            Piece::Semicolon => {
                if has_content {
                    statements.push(&sql[from..range.start]);
                }
                from = range.end;
                has_content = false;
            }
            Piece::Comment => {}
            Piece::Code => has_content |= !sql[range].trim().is_empty(),
            Piece::Quoted | Piece::Param(_) => has_content = true,
        }
    }
    if has_content {
        statements.push(&sql[from..]);
    }
    statements
}

/// The statement without comments and semicolons, trimmed.
fn clean_text(sql: &str) -> String {
    let mut out = String::with_capacity(sql.len());
    for (piece, range) in lex(sql) {
        match piece {
            Piece::Comment | Piece::Semicolon => out.push(' '),
            _ => out.push_str(&sql[range]),
        }
    }
    out.trim().to_owned()
}

fn parameter_count(sql: &str) -> usize {
    lex(sql)
        .into_iter()
        .filter_map(|(piece, _)| match piece {
            Piece::Param(n) => Some(n),
            _ => None,
        })
        .max()
        .unwrap_or(0)
}

fn substitute(sql: &str, literals: &[String]) -> PgWireResult<String> {
    let mut out = String::with_capacity(sql.len());
    for (piece, range) in lex(sql) {
        match piece {
            Piece::Param(n) => {
                let literal = n
                    .checked_sub(1)
                    .and_then(|i| literals.get(i))
                    .ok_or_else(|| error("ERROR", "42P02", format!("there is no parameter ${n}"), None))?;
                out.push_str(literal);
            }
            _ => out.push_str(&sql[range]),
        }
    }
    Ok(out)
}

// ---------------------------------------------------------------------------------------
// Arrow to the wire
// ---------------------------------------------------------------------------------------

/// Row descriptions for a result; `formats` is what the client asked for per column
/// (always text in the simple protocol).
fn result_fields(schema: &Schema, formats: &Format) -> Vec<FieldInfo> {
    schema
        .fields()
        .iter()
        .enumerate()
        .map(|(idx, field)| {
            let (ty, type_modifier) = pg_type(field.data_type());
            let info = FieldInfo::new(field.name().clone(), None, None, ty, column_format(formats, idx));
            match type_modifier {
                Some(modifier) => info.with_type_modifier(modifier),
                None => info,
            }
        })
        .collect()
}

/// pgwire's `Format::format_for` indexes the client's codes without a bound check; a
/// client sending fewer codes than columns must not panic the connection.
fn column_format(formats: &Format, idx: usize) -> FieldFormat {
    match formats {
        Format::Individual(codes) => codes
            .get(idx)
            .map_or(FieldFormat::Text, |code| FieldFormat::from(*code)),
        other => other.format_for(idx),
    }
}

/// The Postgres type a column is sent as, with its type modifier where clients use one
/// (a numeric's precision and scale). Types without a mapping are sent as text (see
/// [`wire_ready`]).
fn pg_type(data_type: &DataType) -> (Type, Option<i32>) {
    use DataType as D;
    let ty = match data_type {
        D::Boolean => Type::BOOL,
        D::Int8 | D::Int16 | D::UInt8 => Type::INT2,
        D::Int32 | D::UInt16 => Type::INT4,
        D::Int64 | D::UInt32 => Type::INT8,
        D::Float32 => Type::FLOAT4,
        D::Float64 => Type::FLOAT8,
        D::UInt64 => Type::NUMERIC,
        D::Decimal32(p, s) | D::Decimal64(p, s) | D::Decimal128(p, s) | D::Decimal256(p, s) => {
            let modifier = (*s >= 0).then(|| ((i32::from(*p) << 16) | i32::from(*s)) + 4);
            return (Type::NUMERIC, modifier);
        }
        D::Date32 | D::Date64 => Type::DATE,
        D::Timestamp(_, None) => Type::TIMESTAMP,
        D::Timestamp(_, Some(_)) => Type::TIMESTAMPTZ,
        D::Binary | D::LargeBinary | D::BinaryView => Type::BYTEA,
        D::Dictionary(_, values) if is_native(values) => return pg_type(values),
        _ => Type::TEXT,
    };
    (ty, None)
}

/// Types encoded value by value in [`encode_cell`].
fn is_native(data_type: &DataType) -> bool {
    use DataType as D;
    matches!(
        data_type,
        D::Null
            | D::Boolean
            | D::Int8
            | D::Int16
            | D::Int32
            | D::Int64
            | D::UInt8
            | D::UInt16
            | D::UInt32
            | D::UInt64
            | D::Float32
            | D::Float64
            | D::Decimal32(..)
            | D::Decimal64(..)
            | D::Decimal128(..)
            | D::Decimal256(..)
            | D::Date32
            | D::Date64
            | D::Timestamp(..)
            | D::Utf8
            | D::LargeUtf8
            | D::Utf8View
            | D::Binary
            | D::LargeBinary
            | D::BinaryView
    )
}

/// A column as [`encode_cell`] takes it: dictionaries unpacked, anything else without a
/// Postgres mapping (lists, structs, intervals, times) cast to its text form once per
/// batch.
fn wire_ready(column: &ArrayRef) -> PgWireResult<ArrayRef> {
    let target = match column.data_type() {
        t if is_native(t) => return Ok(column.clone()),
        DataType::Dictionary(_, values) if is_native(values) => values.as_ref().clone(),
        _ => DataType::Utf8,
    };
    arrow::compute::cast(column, &target).map_err(|e| {
        tracing::warn!(error = %e, from = %column.data_type(), "cannot send a column over postgres");
        error(
            "ERROR",
            "0A000",
            format!(
                "columns of type {} cannot be sent over the Postgres protocol",
                column.data_type()
            ),
            Some("cast the column to a string in the query"),
        )
    })
}

fn query_response(result: QueryResult, formats: &Format) -> Response {
    let fields = Arc::new(result_fields(&result.schema, formats));
    let rows = Rows {
        batches: result.batches.into_iter(),
        columns: Vec::new(),
        len: 0,
        row: 0,
        encoder: DataRowEncoder::new(fields.clone()),
        fields: fields.clone(),
    };
    Response::Query(QueryResponse::new(fields, futures::stream::iter(rows)))
}

/// Data rows, encoded as the client reads them rather than all at once: the batches are
/// already in memory (the gateway's memory limit bounds them), their wire form need not be.
struct Rows {
    batches: std::vec::IntoIter<RecordBatch>,
    columns: Vec<ArrayRef>,
    len: usize,
    row: usize,
    encoder: DataRowEncoder,
    fields: Arc<Vec<FieldInfo>>,
}

impl Iterator for Rows {
    type Item = PgWireResult<DataRow>;

    fn next(&mut self) -> Option<Self::Item> {
        while self.row >= self.len {
            let batch = self.batches.next()?;
            self.columns = match batch.columns().iter().map(wire_ready).collect::<PgWireResult<Vec<_>>>() {
                Ok(columns) => columns,
                Err(e) => return Some(Err(e)),
            };
            self.len = batch.num_rows();
            self.row = 0;
        }
        let row = self.row;
        self.row += 1;
        for (column, field) in self.columns.iter().zip(self.fields.iter()) {
            if let Err(e) = encode_cell(&mut self.encoder, field, column, row) {
                return Some(Err(e));
            }
        }
        Some(Ok(self.encoder.take_row()))
    }
}

/// One value, typed so pgwire writes it in the field's format: text (`to_sql_text`) or
/// binary (`to_sql`), whichever the client asked for.
fn encode_cell(encoder: &mut DataRowEncoder, field: &FieldInfo, column: &ArrayRef, row: usize) -> PgWireResult<()> {
    use DataType as D;
    // A NullArray has no null buffer, so `is_null` says false for it.
    if column.is_null(row) || column.data_type() == &D::Null {
        return encoder.encode_field(&None::<i16>);
    }
    let out_of_range = || {
        error(
            "ERROR",
            "22008",
            format!("a value of `{}` is out of range", field.name()),
            None,
        )
    };
    match column.data_type() {
        D::Boolean => encoder.encode_field(&column.as_boolean().value(row)),
        D::Int8 => encoder.encode_field(&i16::from(column.as_primitive::<Int8Type>().value(row))),
        D::Int16 => encoder.encode_field(&column.as_primitive::<Int16Type>().value(row)),
        D::Int32 => encoder.encode_field(&column.as_primitive::<Int32Type>().value(row)),
        D::Int64 => encoder.encode_field(&column.as_primitive::<Int64Type>().value(row)),
        D::UInt8 => encoder.encode_field(&i16::from(column.as_primitive::<UInt8Type>().value(row))),
        D::UInt16 => encoder.encode_field(&i32::from(column.as_primitive::<UInt16Type>().value(row))),
        D::UInt32 => encoder.encode_field(&i64::from(column.as_primitive::<UInt32Type>().value(row))),
        D::UInt64 => encode_numeric(
            encoder,
            field,
            column.as_primitive::<UInt64Type>().value(row).to_string(),
        ),
        D::Float32 => encoder.encode_field(&column.as_primitive::<Float32Type>().value(row)),
        D::Float64 => encoder.encode_field(&column.as_primitive::<Float64Type>().value(row)),
        D::Decimal32(..) => encode_numeric(
            encoder,
            field,
            column.as_primitive::<Decimal32Type>().value_as_string(row),
        ),
        D::Decimal64(..) => encode_numeric(
            encoder,
            field,
            column.as_primitive::<Decimal64Type>().value_as_string(row),
        ),
        D::Decimal128(..) => encode_numeric(
            encoder,
            field,
            column.as_primitive::<Decimal128Type>().value_as_string(row),
        ),
        D::Decimal256(..) => encode_numeric(
            encoder,
            field,
            column.as_primitive::<Decimal256Type>().value_as_string(row),
        ),
        D::Date32 => {
            let date = column
                .as_primitive::<Date32Type>()
                .value_as_date(row)
                .ok_or_else(out_of_range)?;
            encoder.encode_field(&date)
        }
        D::Date64 => {
            let date = column
                .as_primitive::<Date64Type>()
                .value_as_date(row)
                .ok_or_else(out_of_range)?;
            encoder.encode_field(&date)
        }
        D::Timestamp(unit, tz) => {
            let naive = match unit {
                TimeUnit::Second => column.as_primitive::<TimestampSecondType>().value_as_datetime(row),
                TimeUnit::Millisecond => column.as_primitive::<TimestampMillisecondType>().value_as_datetime(row),
                TimeUnit::Microsecond => column.as_primitive::<TimestampMicrosecondType>().value_as_datetime(row),
                TimeUnit::Nanosecond => column.as_primitive::<TimestampNanosecondType>().value_as_datetime(row),
            }
            .ok_or_else(out_of_range)?;
            // Arrow keeps instants of zoned timestamps in UTC; the session's TimeZone is UTC.
            match tz {
                Some(_) => encoder.encode_field(&naive.and_utc()),
                None => encoder.encode_field(&naive),
            }
        }
        D::Utf8 => encoder.encode_field(&column.as_string::<i32>().value(row)),
        D::LargeUtf8 => encoder.encode_field(&column.as_string::<i64>().value(row)),
        D::Utf8View => encoder.encode_field(&column.as_string_view().value(row)),
        D::Binary => encoder.encode_field(&column.as_binary::<i32>().value(row)),
        D::LargeBinary => encoder.encode_field(&column.as_binary::<i64>().value(row)),
        D::BinaryView => encoder.encode_field(&column.as_binary_view().value(row)),
        other => Err(error(
            "ERROR",
            "XX000",
            format!(
                "column `{}` of type {other} reached the encoder unconverted",
                field.name()
            ),
            None,
        )),
    }
}

/// A NUMERIC from its exact decimal text: as is in text format; in binary format
/// encoded here, because pgwire's binary NUMERIC goes through `rust_decimal`, which holds
/// 28 digits where Arrow decimals hold up to 76. The bytes go out through the `&[u8]`
/// encoder, which copies them verbatim.
fn encode_numeric(encoder: &mut DataRowEncoder, field: &FieldInfo, text: String) -> PgWireResult<()> {
    match field.format() {
        FieldFormat::Text => encoder.encode_field(&text),
        FieldFormat::Binary => encoder.encode_field(&numeric_to_binary(&text)?.as_slice()),
    }
}

/// Postgres' binary NUMERIC for a plain decimal text such as `-123.4500`.
fn numeric_to_binary(text: &str) -> PgWireResult<Vec<u8>> {
    let bad = || error("ERROR", "XX000", format!("`{text}` is not a decimal"), None);
    let (negative, unsigned) = match text.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, text),
    };
    let (int, frac) = unsigned.split_once('.').unwrap_or((unsigned, ""));
    if !int.bytes().chain(frac.bytes()).all(|c| c.is_ascii_digit()) {
        return Err(bad());
    }
    let int_digits = format!("{}{int}", "0".repeat((4 - int.len() % 4) % 4));
    let frac_digits = format!("{frac}{}", "0".repeat((4 - frac.len() % 4) % 4));
    let mut groups: Vec<i16> = format!("{int_digits}{frac_digits}")
        .as_bytes()
        .chunks(4)
        .map(|chunk| chunk.iter().fold(0i16, |acc, d| acc * 10 + i16::from(d - b'0')))
        .collect();
    let mut weight = i16::try_from(int_digits.len() / 4).map_err(|_| bad())? - 1;
    let leading = groups.iter().take_while(|&&g| g == 0).count();
    groups.drain(..leading);
    weight -= i16::try_from(leading).map_err(|_| bad())?;
    while groups.last() == Some(&0) {
        groups.pop();
    }
    if groups.is_empty() {
        weight = 0;
    }
    let sign: u16 = if negative && !groups.is_empty() { 0x4000 } else { 0 };
    let mut out = Vec::with_capacity(8 + groups.len() * 2);
    out.extend_from_slice(&i16::try_from(groups.len()).map_err(|_| bad())?.to_be_bytes());
    out.extend_from_slice(&weight.to_be_bytes());
    out.extend_from_slice(&sign.to_be_bytes());
    out.extend_from_slice(&u16::try_from(frac.len()).map_err(|_| bad())?.to_be_bytes());
    for group in groups {
        out.extend_from_slice(&group.to_be_bytes());
    }
    Ok(out)
}

// ---------------------------------------------------------------------------------------
// Errors
// ---------------------------------------------------------------------------------------

fn error(severity: &str, code: &str, message: impl Into<String>, hint: Option<&str>) -> PgWireError {
    let mut info = ErrorInfo::new(severity.to_owned(), code.to_owned(), message.into());
    info.hint = hint.map(str::to_owned);
    PgWireError::UserError(Box::new(info))
}

/// The gateway's messages end in `\nhint: …`; Postgres has a field for that.
fn split_hint(text: &str) -> (&str, Option<&str>) {
    match text.split_once("\nhint: ") {
        Some((message, hint)) => (message, Some(hint)),
        None => (text, None),
    }
}

/// A refused or failed query as a Postgres error with the SQLSTATE clients act on.
fn gateway_error(e: trib_access::Error) -> PgWireError {
    use trib_access::Error as E;
    let code = match &e {
        E::Syntax { .. } => "42601",
        E::NotReadOnly { .. } => "25006",
        E::Refused { .. } => "0A000",
        E::UnknownProduct { .. } => "42P01",
        E::Forbidden { .. } | E::NotPermitted { .. } => "42501",
        E::TimeTravel { .. } => "22023",
        E::NoData { .. } | E::NoSystemTable { .. } | E::Retired { .. } => "55000",
        E::Plan { message } => plan_code(message),
        E::Execution { .. } => "XX000",
        E::MemoryLimit { .. } => "53200",
        E::Timeout { .. } => "57014",
        E::InvalidToken | E::RevokedToken { .. } => "28P01",
        E::Token { .. } | E::Io { .. } | E::Lake(_) | E::EngineOption { .. } | E::Internal(_) => {
            tracing::error!(error = %e, "postgres read failed");
            return error(
                "ERROR",
                "XX000",
                "the read failed on the server",
                Some("the server log has the cause; retry later"),
            );
        }
    };
    let text = e.to_string();
    let (message, hint) = split_hint(&text);
    error("ERROR", code, message, hint)
}

/// DataFusion's planning errors by their wording: best effort, since only the text says
/// which kind of mistake it was.
fn plan_code(message: &str) -> &'static str {
    if message.contains("No field named") {
        "42703"
    } else if message.contains("not found") && message.contains("table") {
        "42P01"
    } else if message.contains("Invalid function") {
        "42883"
    } else {
        "42000"
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statements_split_outside_literals_and_comments() {
        let sql = "SET a = 'x;y'; -- c;\nSELECT \"a;b\" FROM t /* ; */; ;  SELECT $$;$$";
        assert_eq!(
            split_statements(sql),
            [
                "SET a = 'x;y'",
                " -- c;\nSELECT \"a;b\" FROM t /* ; */",
                "  SELECT $$;$$"
            ]
        );
        assert!(split_statements("-- ping").is_empty());
    }

    #[test]
    fn parameters_are_bound_as_literals() {
        let sql = "SELECT * FROM s.t WHERE a = $1 AND b = '$2' AND c-$2 > 0 -- $3";
        let bound = substitute(sql, &["'it''s'".to_owned(), number(-5)]).expect("bound");
        assert_eq!(
            bound,
            "SELECT * FROM s.t WHERE a = 'it''s' AND b = '$2' AND c-(-5) > 0 -- $3"
        );
        assert_eq!(parameter_count(sql), 2);
        assert!(substitute("SELECT $2", &["1".to_owned()]).is_err());
    }

    #[test]
    fn local_statements_are_recognised() {
        assert_eq!(classify("BEGIN").expect("kind"), Kind::Begin);
        assert_eq!(classify(" commit ;").expect("kind"), Kind::Commit);
        assert_eq!(
            classify("SET application_name = 'psql'").expect("kind"),
            Kind::Set {
                name: "application_name".into(),
                value: "psql".into()
            }
        );
        assert_eq!(
            classify("SET TIME ZONE 'UTC'").expect("kind"),
            Kind::Set {
                name: "timezone".into(),
                value: "UTC".into()
            }
        );
        assert_eq!(
            classify("show transaction isolation level").expect("kind"),
            Kind::Show("transaction_isolation".into())
        );
        assert_eq!(
            classify("select pg_catalog.version()").expect("kind"),
            Kind::Fixed(Fixed::Version)
        );
        assert!(classify("SET ROLE admin").is_err());
    }

    #[test]
    fn numerics_round_trip_through_the_binary_format() {
        for text in ["0", "123.45", "-0.0012", "10000", "99999999.9999", "-7.000"] {
            let binary = numeric_to_binary(text).expect("encoded");
            assert_eq!(numeric_from_binary(&binary).as_deref(), Some(text), "{text}");
        }
    }

    #[test]
    fn numeric_parameters_keep_their_exactness() {
        assert_eq!(
            numeric_literal("12.50").as_deref(),
            Some("CAST('12.50' AS DECIMAL(4, 2))")
        );
        assert_eq!(numeric_literal("1e5"), None);
        assert_eq!(float(f64::NAN), "CAST('NaN' AS DOUBLE)");
        assert_eq!(float(-1.5), "(-1.5)");
    }

    #[test]
    fn decimals_carry_precision_and_scale() {
        assert_eq!(
            pg_type(&DataType::Decimal128(18, 4)),
            (Type::NUMERIC, Some(((18 << 16) | 4) + 4))
        );
        assert_eq!(pg_type(&DataType::Utf8).0, Type::TEXT);
    }
}
