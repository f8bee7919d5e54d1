use crate::Outcome;
use crate::cli::{ContractCommand, ContractFormat, ExportArgs, GlobalArgs, ImportArgs};
use anyhow::{Context, Result, bail};
use std::path::PathBuf;

pub fn run(g: &GlobalArgs, cmd: ContractCommand) -> Result<Outcome> {
    match cmd {
        ContractCommand::Export(a) => export(g, &a),
        ContractCommand::Import(a) => import(&a),
    }
}

fn export(g: &GlobalArgs, args: &ExportArgs) -> Result<Outcome> {
    let path = PathBuf::from(&args.product);
    let contract = if path.is_file() {
        let text = std::fs::read_to_string(&path).with_context(|| format!("cannot read `{}`", path.display()))?;
        super::diff::load_contract(&args.product, text)?.contract
    } else {
        let name: trib_spec::ProductName = args.product.parse().map_err(|e: trib_spec::ProductNameError| {
            anyhow::anyhow!("`{}` is neither a file nor a product address: {e}", args.product)
        })?;
        let project = super::project(&g.project).map_err(|d| super::fatal(*d))?;
        match project.latest(&name) {
            Some(c) => c.clone(),
            None => bail!(
                "no valid contract for `{name}` in `{}`; hint: run `trib check`",
                g.project.display()
            ),
        }
    };
    let text = match args.format {
        ContractFormat::Odcs => trib_spec::odcs::to_yaml(&trib_spec::odcs::export(&contract)),
    };
    match &args.output {
        Some(out) => {
            std::fs::write(out, &text).with_context(|| format!("cannot write `{}`", out.display()))?;
            eprintln!(
                "wrote `{}` (ODCS v3.1.0) to `{}`",
                contract.product.value,
                out.display()
            );
        }
        None => print!("{text}"),
    }
    Ok(Outcome::Ok)
}

fn import(args: &ImportArgs) -> Result<Outcome> {
    let text = std::fs::read_to_string(&args.file).with_context(|| format!("cannot read `{}`", args.file.display()))?;
    let name = args.file.display().to_string();
    let source = trib_spec::yaml::Source::new(name.clone(), text.clone());
    let imported = trib_spec::odcs::import(&source).map_err(|d| super::fatal(*d))?;
    let mut sources = std::collections::BTreeMap::new();
    sources.insert(name.clone(), text);
    let warnings: trib_core::Diagnostics = imported.warnings.into_iter().collect();
    if !warnings.is_empty() {
        eprint!("{}", crate::render::snippets(&warnings, &sources));
    }
    match &args.output {
        Some(out) => {
            std::fs::write(out, &imported.yaml).with_context(|| format!("cannot write `{}`", out.display()))?;
            eprintln!("wrote `{}`", out.display());
        }
        None => print!("{}", imported.yaml),
    }
    if imported.contract.is_none() {
        eprintln!("the imported contract is incomplete; fix it and run `trib check`");
        return Ok(Outcome::Problems);
    }
    Ok(Outcome::Ok)
}
