use crate::Outcome;
use crate::cli::{GlobalArgs, InitArgs};
use anyhow::Result;

pub fn run(g: &GlobalArgs, args: &InitArgs) -> Result<Outcome> {
    let dir = args.dir.clone().unwrap_or_else(|| g.project.clone());
    let name = match &args.name {
        Some(n) => n.clone(),
        None => std::fs::canonicalize(&dir)
            .ok()
            .or_else(|| Some(dir.clone()))
            .and_then(|d| d.file_name().map(|n| n.to_string_lossy().into_owned()))
            .unwrap_or_else(|| "tributary".into()),
    };
    let written = crate::template::write(&dir, &name)?;
    eprintln!("created project `{name}` in `{}` ({written} files)", dir.display());
    eprintln!("next: cd {} && trib check", dir.display());
    Ok(Outcome::Ok)
}
