//! Which models have new input, cheaply enough to ask several times a second: the
//! input tables stay open and are brought up to date incrementally (a listing of each
//! Delta log past the version held), instead of being opened for every question.

use crate::dag::Node;
use crate::{Engine, Error, Result};
use std::collections::HashMap;
use trib_lake::{ProductTable, TableKind};

/// Input table versions each model last ran on.
#[derive(Default)]
pub struct Watcher {
    tables: HashMap<Node, ProductTable>,
    ran_on: HashMap<Node, Vec<u64>>,
}

impl Watcher {
    pub fn new() -> Self {
        Self::default()
    }

    /// The current versions of `model`'s inputs, when they differ from the ones it last
    /// ran on (or it never ran here); `None` when nothing is new.
    pub async fn changed(&mut self, engine: &Engine, model: &Node) -> Result<Option<Vec<u64>>> {
        let mut versions = Vec::new();
        for input in engine.dag().inputs(model) {
            if !self.tables.contains_key(input) {
                let contract = engine
                    .dag()
                    .contract(input)
                    .ok_or_else(|| Error::UnknownProduct(input.0.clone()))?;
                let table = ProductTable::open_or_create(engine.lake(), contract, TableKind::Data)
                    .await
                    .map_err(Error::Lake)?;
                self.tables.insert(input.clone(), table);
            }
            let Some(table) = self.tables.get_mut(input) else {
                continue;
            };
            table.refresh().await.map_err(Error::Lake)?;
            versions.push(table.version().unwrap_or_default());
        }
        Ok((self.ran_on.get(model) != Some(&versions)).then_some(versions))
    }

    /// `model` caught up with the input versions [`Watcher::changed`] returned.
    pub fn ran(&mut self, model: &Node, versions: Vec<u64>) {
        self.ran_on.insert(model.clone(), versions);
    }
}
