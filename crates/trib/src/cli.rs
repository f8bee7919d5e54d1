//! Command-line arguments: one `XxxArgs` per subcommand; doc comments are the help.

use clap::{Args, Parser, Subcommand, ValueEnum};
use std::path::PathBuf;

#[derive(Debug, Parser)]
#[command(
    name = "trib",
    version,
    about = "Tributary: data products from contract to query, in one binary"
)]
pub struct Cli {
    #[command(flatten)]
    pub global: GlobalArgs,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Args)]
pub struct GlobalArgs {
    /// Project directory (the one holding trib.toml).
    #[arg(long, short = 'C', global = true, env = "TRIB_PROJECT", default_value = ".")]
    pub project: PathBuf,
    /// More logging (-v info, -vv debug); TRIB_LOG takes an env-filter.
    #[arg(long, short, global = true, action = clap::ArgAction::Count)]
    pub verbose: u8,
    /// Write logs as JSON lines.
    #[arg(long, global = true, env = "TRIB_LOG_JSON")]
    pub log_json: bool,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Create a project with example data products, models and policies.
    Init(InitArgs),
    /// Validate contracts, models and policies; compare versions against git.
    Check(CheckArgs),
    /// Classify the changes between two versions of a contract.
    Diff(DiffArgs),
    /// Deploy the contracts: register each product version in the catalog, create or
    /// evolve its table. Prints the plan first and asks on a terminal.
    Apply(ApplyArgs),
    /// Search and browse the catalog.
    #[command(subcommand)]
    Catalog(CatalogCommand),
    /// Consumers of product versions: access requests and their approval.
    #[command(subcommand)]
    Consumers(ConsumersCommand),
    /// Product lineage: what a product is made from and what is made from it.
    Lineage(LineageArgs),
    /// Write a static HTML site of the catalog (products, schemas, owners, consumers,
    /// lineage graphs, status) that is browsable from disk.
    Docs(DocsArgs),
    /// Print the JSON Schema of the contract format.
    Schema,
    /// Load records from a file or stdin into a product's bronze table.
    Ingest(IngestArgs),
    /// Catch models up with their inputs, in dependency order.
    Run(RunArgs),
    /// Rebuild a model from the whole of its inputs (`PRODUCT+`: and its dependents).
    Replay(ReplayArgs),
    /// Run a read-only SQL query over products, as yourself or (admins) as a role.
    Query(QueryArgs),
    /// Create, list and revoke API tokens (stored hashed in `.trib/tokens.json`).
    #[command(subcommand)]
    Token(TokenCommand),
    /// Show one data product: contract, schema, lineage neighbours, certification.
    Show(ShowArgs),
    /// Run the contracts' quality checks over whole products and print the results.
    Quality(QualityArgs),
    /// Show SLO attainment, error budgets and certification (`--evaluate` measures first).
    Slo(SloArgs),
    /// Compact, Z-order, checkpoint and vacuum product tables.
    Maintain(MaintainArgs),
    /// Run the HTTP API: event ingestion, health and metrics.
    Serve(ServeArgs),
    /// Export or import contracts in other formats.
    #[command(subcommand)]
    Contract(ContractCommand),
    /// Build the example project and run every capability on it.
    Demo(DemoArgs),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, Default)]
pub enum OutputFormat {
    #[default]
    Text,
    Json,
}

#[derive(Debug, Args)]
pub struct InitArgs {
    /// Directory to create (default: the current directory).
    pub dir: Option<PathBuf>,
    /// Project name (default: the directory name).
    #[arg(long)]
    pub name: Option<String>,
}

#[derive(Debug, Args)]
pub struct CheckArgs {
    /// Git revision to compare contract versions against (default: HEAD when the
    /// project is in a git repository).
    #[arg(long)]
    pub against: Option<String>,
    /// Skip the version comparison against git.
    #[arg(long)]
    pub no_git: bool,
    /// `text` renders snippets on stderr; `json` prints diagnostics on stdout.
    #[arg(long, value_enum, default_value_t)]
    pub format: OutputFormat,
}

#[derive(Debug, Args)]
pub struct DiffArgs {
    /// Old contract file, or a product address / file when `--against` is given.
    pub old: String,
    /// New contract file.
    pub new: Option<PathBuf>,
    /// Compare the working copy of OLD with this git revision.
    #[arg(long)]
    pub against: Option<String>,
    #[arg(long, value_enum, default_value_t)]
    pub format: OutputFormat,
}

#[derive(Debug, Args)]
pub struct ApplyArgs {
    /// Apply without asking (needed when not on a terminal).
    #[arg(long, short)]
    pub yes: bool,
    /// Print the plan and stop.
    #[arg(long)]
    pub dry_run: bool,
    #[arg(long, value_enum, default_value_t)]
    pub format: OutputFormat,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, Default)]
pub enum LineageFormat {
    #[default]
    Text,
    Json,
    Mermaid,
    Dot,
}

#[derive(Debug, Args)]
pub struct DocsArgs {
    /// Where to write the site (relative to the project).
    #[arg(long, default_value = ".trib/docs")]
    pub out: PathBuf,
}

#[derive(Debug, Args)]
pub struct LineageArgs {
    /// Product address, e.g. `orders.daily_revenue`.
    pub product: String,
    /// Only what it is made from.
    #[arg(long, conflicts_with = "downstream")]
    pub upstream: bool,
    /// Only what is made from it.
    #[arg(long)]
    pub downstream: bool,
    /// One output column of a model: the input columns it comes from, and how.
    #[arg(long)]
    pub column: Option<String>,
    #[arg(long, value_enum, default_value_t)]
    pub format: LineageFormat,
}

#[derive(Debug, Subcommand)]
pub enum CatalogCommand {
    /// Full-text search over names, descriptions, columns, tags, owners and domains.
    Search(CatalogSearchArgs),
}

#[derive(Debug, Args)]
pub struct CatalogSearchArgs {
    /// Words to look for; each matches as a prefix, all must match.
    pub query: String,
    #[arg(long, default_value_t = 20)]
    pub limit: i64,
    #[arg(long, value_enum, default_value_t)]
    pub format: OutputFormat,
}

#[derive(Debug, Subcommand)]
pub enum ConsumersCommand {
    /// Ask for a product version (`orders.orders@v1`); its owner approves.
    Request(ConsumersRequestArgs),
    /// Approve a request by its id (as the owning team).
    Approve(ConsumersApproveArgs),
    /// List consumers and requests.
    List(ConsumersListArgs),
}

#[derive(Debug, Args)]
pub struct ConsumersRequestArgs {
    /// `product@vN`, or a product (its newest major).
    pub product: String,
    /// Who consumes: a system or a person.
    #[arg(long)]
    pub consumer: String,
    /// How to reach them (email, channel).
    #[arg(long)]
    pub contact: String,
    /// What for.
    #[arg(long)]
    pub purpose: String,
    /// Where to POST notices about this product version (its deprecation for a new
    /// major, its retirement); without it, the `[[teams]]` entry named as the consumer.
    #[arg(long)]
    pub webhook: Option<String>,
}

#[derive(Debug, Args)]
pub struct ConsumersApproveArgs {
    pub id: String,
    /// Who approves (default: the product's owner).
    #[arg(long)]
    pub by: Option<String>,
}

#[derive(Debug, Args)]
pub struct ConsumersListArgs {
    /// Only this product's consumers.
    pub product: Option<String>,
    #[arg(long, value_enum, default_value_t)]
    pub format: OutputFormat,
}

#[derive(Debug, Args)]
pub struct IngestArgs {
    /// Product address, e.g. `orders.orders_raw`.
    pub product: String,
    /// NDJSON, JSON, CSV, Parquet or Debezium file; `-` or nothing reads stdin.
    pub file: Option<PathBuf>,
    /// Input format (default: from the file extension, NDJSON for stdin).
    #[arg(long, value_parser = ["ndjson", "json", "csv", "parquet", "debezium"])]
    pub input_format: Option<String>,
    /// Records per commit.
    #[arg(long, default_value_t = 250_000)]
    pub batch_size: usize,
    /// `text` prints a summary on stderr; `json` prints it on stdout.
    #[arg(long, value_enum, default_value_t)]
    pub format: OutputFormat,
}

#[derive(Debug, Args)]
pub struct RunArgs {
    /// Products to run, as dbt selects them: `orders.orders`, `orders.orders+` (and
    /// downstream), `+orders.daily_revenue` (and upstream), `domain:orders`. Default: all.
    #[arg(long, short, num_args = 1..)]
    pub select: Vec<String>,
    /// `text` prints a line per model on stderr; `json` prints the runs on stdout.
    #[arg(long, value_enum, default_value_t)]
    pub format: OutputFormat,
    /// Models run at once, each as soon as its inputs are done (as dbt's `--threads`).
    #[arg(long, default_value_t = 4, value_parser = clap::value_parser!(u16).range(1..))]
    pub threads: u16,
}

#[derive(Debug, Args)]
pub struct ReplayArgs {
    /// Product address; a trailing `+` replays its dependents too, inputs first.
    pub product: String,
    #[arg(long, value_enum, default_value_t)]
    pub format: OutputFormat,
}

#[derive(Debug, Args)]
pub struct MaintainArgs {
    /// Product address; all products when omitted.
    pub product: Option<String>,
    /// Report what would be removed without removing anything.
    #[arg(long)]
    pub dry_run: bool,
    #[arg(long, value_enum, default_value_t)]
    pub format: OutputFormat,
}

#[derive(Debug, Args)]
pub struct ServeArgs {
    /// Address to listen on.
    #[arg(long, env = "TRIB_LISTEN", default_value = "127.0.0.1:8080")]
    pub listen: std::net::SocketAddr,
    /// Largest request body accepted, in bytes.
    #[arg(long, env = "TRIB_MAX_BODY_BYTES", default_value_t = 16 * 1024 * 1024)]
    pub max_body_bytes: usize,
    /// Requests of one product are committed together once this many records wait.
    #[arg(long, env = "TRIB_GROUP_COMMIT_RECORDS", default_value_t = 50_000)]
    pub group_commit_records: usize,
    /// ... or once the oldest waiting request has waited this many milliseconds.
    #[arg(long, env = "TRIB_GROUP_COMMIT_MS", default_value_t = 5)]
    pub group_commit_ms: u64,
    /// Requests waiting per product before new ones get 429.
    #[arg(long, env = "TRIB_INGEST_QUEUE", default_value_t = 1024)]
    pub queue: usize,
    /// How often models look for new input commits, in milliseconds; 0 runs no models.
    #[arg(long, env = "TRIB_MODELS_POLL_MS", default_value_t = 250)]
    pub models_poll_ms: u64,
    /// Address for the Postgres wire protocol (psql, psycopg, BI tools; the password is
    /// an API token), or `off`.
    #[arg(long, env = "TRIB_PG_LISTEN", default_value = "127.0.0.1:5433")]
    pub pg_listen: String,
}

#[derive(Debug, Args)]
pub struct ShowArgs {
    /// Product address, e.g. `orders.orders` (its newest major) or `orders.orders@v1`.
    pub product: String,
    #[arg(long, value_enum, default_value_t)]
    pub format: OutputFormat,
}

#[derive(Debug, Args)]
pub struct QualityArgs {
    /// Product address; every product with checks when omitted.
    pub product: Option<String>,
    /// Print only the checks that did not pass.
    #[arg(long)]
    pub failures: bool,
    #[arg(long, value_enum, default_value_t)]
    pub format: OutputFormat,
}

#[derive(Debug, Args)]
pub struct SloArgs {
    /// Product address; every product when omitted.
    pub product: Option<String>,
    /// Measure SLOs, step certification and send alerts first (what `trib serve` does
    /// every `[certification] evaluate_every`).
    #[arg(long)]
    pub evaluate: bool,
    #[arg(long, value_enum, default_value_t)]
    pub format: OutputFormat,
}

#[derive(Debug, Args)]
pub struct QueryArgs {
    /// The query. Products are tables named `domain.name`; `domain.name@v1` reads an
    /// older major version. Time travel: `FOR SYSTEM_TIME AS OF '2026-03-15T14:00:00Z'`,
    /// `TIMESTAMP AS OF '2026-03-15 14:00:00'` or `VERSION AS OF 12` after the name.
    pub sql: String,
    /// table, json, ndjson, csv, parquet or arrow (an Arrow IPC stream).
    #[arg(long, default_value = "table")]
    pub format: trib_access::Format,
    /// Run as this role, to see what its members see (admins only).
    #[arg(long = "as", value_name = "ROLE")]
    pub as_role: Option<String>,
    /// Run as the holder of this token instead of the local identity.
    #[arg(long, env = "TRIB_TOKEN", hide_env_values = true)]
    pub token: Option<String>,
}

#[derive(Debug, Subcommand)]
pub enum TokenCommand {
    /// Create a token; it is printed once and only its hash is kept.
    Create(TokenCreateArgs),
    /// List tokens (ids, names, roles; never the tokens).
    List(TokenListArgs),
    /// Revoke a token by id or name; a running server refuses it at once.
    Revoke(TokenRevokeArgs),
}

#[derive(Debug, Args)]
pub struct TokenCreateArgs {
    /// A name for whoever holds it, e.g. `bi-dashboard`.
    pub name: String,
    /// Role it carries (repeat for several): a role of trib.toml, an owning team, or `admin`.
    #[arg(long = "role", required = true)]
    pub roles: Vec<String>,
    #[arg(long, value_enum, default_value_t)]
    pub format: OutputFormat,
}

#[derive(Debug, Args)]
pub struct TokenListArgs {
    #[arg(long, value_enum, default_value_t)]
    pub format: OutputFormat,
}

#[derive(Debug, Args)]
pub struct TokenRevokeArgs {
    /// The token's id or name.
    pub token: String,
}

#[derive(Debug, Subcommand)]
pub enum ContractCommand {
    /// Write a contract in another format (ODCS v3.1).
    Export(ExportArgs),
    /// Read an ODCS contract and print it as a Tributary contract.
    Import(ImportArgs),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, Default)]
pub enum ContractFormat {
    #[default]
    Odcs,
}

#[derive(Debug, Args)]
pub struct ExportArgs {
    /// Product address or contract file.
    pub product: String,
    #[arg(long, value_enum, default_value_t)]
    pub format: ContractFormat,
    /// Write here instead of stdout.
    #[arg(long, short)]
    pub output: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct ImportArgs {
    /// ODCS YAML file.
    pub file: PathBuf,
    /// Write the contract here instead of stdout.
    #[arg(long, short)]
    pub output: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct DemoArgs {
    /// Where to build the example project (replaced if it holds an earlier demo).
    #[arg(long, default_value = "trib-demo")]
    pub dir: PathBuf,
}
