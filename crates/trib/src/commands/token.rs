//! `trib token create|list|revoke`.

use crate::Outcome;
use crate::cli::{GlobalArgs, OutputFormat, TokenCommand};
use anyhow::Result;
use trib_access::{ADMIN_ROLE, TokenStore};

pub fn run(g: &GlobalArgs, command: TokenCommand) -> Result<Outcome> {
    let project = super::project(&g.project).map_err(|d| super::fatal(*d))?;
    let store = TokenStore::open(&project.dir);
    match command {
        TokenCommand::Create(a) => {
            // A role the project knows: declared in trib.toml, an owning team, or admin.
            let mut known: Vec<String> = project.settings.roles.iter().map(|r| r.name.clone()).collect();
            known.extend(project.contracts().map(|c| c.owner.clone()));
            known.push(ADMIN_ROLE.to_string());
            for role in &a.roles {
                if !known.contains(role) {
                    let hint = match trib_core::diagnostic::did_you_mean(role, known.iter().map(String::as_str)) {
                        Some(s) => format!("did you mean `{s}`?"),
                        None => "declare it in trib.toml under [[roles]]".to_string(),
                    };
                    anyhow::bail!("unknown role `{role}`\nhint: {hint}");
                }
            }
            let (record, token) = store.create(&a.name, a.roles.clone())?;
            match a.format {
                OutputFormat::Json => println!(
                    "{}",
                    serde_json::json!({ "id": record.id, "name": record.name, "roles": record.roles, "token": token })
                ),
                OutputFormat::Text => {
                    println!("{token}");
                    eprintln!(
                        "token `{}` (id {}) for role(s) {}; it is shown only now: store it as a secret",
                        record.name,
                        record.id,
                        record.roles.join(", ")
                    );
                }
            }
        }
        TokenCommand::List(a) => {
            let tokens = store.list()?;
            match a.format {
                OutputFormat::Json => {
                    let items: Vec<_> = tokens
                        .iter()
                        .map(|t| {
                            serde_json::json!({
                                "id": t.id, "name": t.name, "roles": t.roles,
                                "created": t.created, "revoked": t.revoked,
                            })
                        })
                        .collect();
                    println!("{}", serde_json::json!({ "tokens": items }));
                }
                OutputFormat::Text => {
                    println!("{:<14} {:<24} {:<20} {:<30} REVOKED", "ID", "NAME", "CREATED", "ROLES");
                    for t in &tokens {
                        println!(
                            "{:<14} {:<24} {:<20} {:<30} {}",
                            t.id,
                            t.name,
                            t.created,
                            t.roles.join(","),
                            t.revoked.as_deref().unwrap_or("-")
                        );
                    }
                }
            }
        }
        TokenCommand::Revoke(a) => {
            let t = store.revoke(&a.token)?;
            eprintln!("revoked token `{}` (id {})", t.name, t.id);
        }
    }
    Ok(Outcome::Ok)
}
