//! The products of a project as a graph (inputs → models) and dbt-style selectors.

use crate::{Error, Result};
use std::collections::{BTreeMap, BTreeSet};
use trib_spec::{Contract, Project, Source};

/// A product version: its address and major.
pub type Node = (String, u64);

/// Every product version of a project and the inputs of each model.
#[derive(Debug, Clone)]
pub struct Dag {
    /// Inputs of each model (bronze products have none).
    inputs: BTreeMap<Node, Vec<Node>>,
    contracts: BTreeMap<Node, Contract>,
}

impl Dag {
    pub fn new(project: &Project) -> Self {
        let mut contracts = BTreeMap::new();
        for c in project.contracts() {
            contracts.insert((c.product.value.to_string(), c.major()), c.clone());
        }
        let mut inputs = BTreeMap::new();
        for (node, c) in &contracts {
            let ins = match &c.source {
                Source::Model(m) => m
                    .inputs
                    .iter()
                    .filter_map(|i| {
                        let major = i
                            .value
                            .major
                            .or_else(|| project.latest(&i.value.product).map(Contract::major))?;
                        Some((i.value.product.to_string(), major))
                    })
                    .collect(),
                Source::Stream(_) => Vec::new(),
            };
            inputs.insert(node.clone(), ins);
        }
        Self { inputs, contracts }
    }

    pub fn contract(&self, node: &Node) -> Option<&Contract> {
        self.contracts.get(node)
    }

    pub fn inputs(&self, node: &Node) -> &[Node] {
        self.inputs.get(node).map_or(&[], Vec::as_slice)
    }

    /// The newest major of a product.
    pub fn latest(&self, product: &str) -> Option<Node> {
        self.contracts
            .keys()
            .filter(|(p, _)| p == product)
            .max_by_key(|(_, m)| *m)
            .cloned()
    }

    fn dependents(&self, node: &Node) -> Vec<Node> {
        self.inputs
            .iter()
            .filter(|(_, ins)| ins.contains(node))
            .map(|(n, _)| n.clone())
            .collect()
    }

    /// The models among `selected`, inputs before the models that read them.
    pub fn order(&self, selected: &BTreeSet<Node>) -> Vec<Node> {
        let mut done: BTreeSet<Node> = BTreeSet::new();
        let mut out = Vec::new();
        // Cycles are refused by `trib check`; the depth bound only guards against a loop.
        fn visit(dag: &Dag, n: &Node, done: &mut BTreeSet<Node>, out: &mut Vec<Node>, depth: usize) {
            if depth > 1_000 || done.contains(n) {
                return;
            }
            done.insert(n.clone());
            for i in dag.inputs(n) {
                visit(dag, i, done, out, depth + 1);
            }
            out.push(n.clone());
        }
        for n in selected {
            visit(self, n, &mut done, &mut out, 0);
        }
        out.into_iter()
            .filter(|n| selected.contains(n) && self.is_model(n))
            .collect()
    }

    pub fn is_model(&self, node: &Node) -> bool {
        self.contracts
            .get(node)
            .is_some_and(|c| matches!(c.source, Source::Model(_)))
    }

    /// Products chosen by selectors, as dbt spells them: `orders.orders` (newest major),
    /// `orders.orders@v1`, `orders.orders+` (and everything downstream),
    /// `+orders.orders` (and everything upstream), `domain:orders`. No selector means
    /// every product.
    pub fn select(&self, selectors: &[String]) -> Result<BTreeSet<Node>> {
        if selectors.is_empty() {
            return Ok(self.contracts.keys().cloned().collect());
        }
        let mut out = BTreeSet::new();
        for raw in selectors {
            for sel in raw.split([',', ' ']).filter(|s| !s.is_empty()) {
                let (up, rest) = sel.strip_prefix('+').map_or((false, sel), |r| (true, r));
                let (down, core) = rest.strip_suffix('+').map_or((false, rest), |r| (true, r));
                let roots: Vec<Node> = if let Some(domain) = core.strip_prefix("domain:") {
                    let found: Vec<Node> = self
                        .contracts
                        .keys()
                        .filter(|(p, _)| p.split('.').next() == Some(domain))
                        .cloned()
                        .collect();
                    if found.is_empty() {
                        return Err(Error::UnknownSelector {
                            selector: sel.to_string(),
                            hint: "no product is in that domain".into(),
                        });
                    }
                    found
                } else {
                    let (product, major) = match core.split_once("@v") {
                        Some((p, m)) => (p, m.parse::<u64>().ok()),
                        None => (core, None),
                    };
                    let node = match major {
                        Some(m) => Some((product.to_string(), m)).filter(|n| self.contracts.contains_key(n)),
                        None => self.latest(product),
                    };
                    let Some(node) = node else {
                        let names: Vec<String> = self.contracts.keys().map(|(p, _)| p.clone()).collect();
                        let hint = trib_core::diagnostic::did_you_mean(product, names.iter().map(String::as_str))
                            .map_or_else(
                                || "selectors are `product`, `product+`, `+product` or `domain:<name>`".to_string(),
                                |s| format!("did you mean `{s}`?"),
                            );
                        return Err(Error::UnknownSelector {
                            selector: sel.to_string(),
                            hint,
                        });
                    };
                    vec![node]
                };
                for root in roots {
                    if up {
                        self.walk(&root, &mut out, |d, n| d.inputs(n).to_vec());
                    }
                    if down {
                        self.walk(&root, &mut out, Dag::dependents);
                    }
                    out.insert(root);
                }
            }
        }
        Ok(out)
    }

    fn walk(&self, from: &Node, out: &mut BTreeSet<Node>, next: impl Fn(&Dag, &Node) -> Vec<Node>) {
        let mut stack = vec![from.clone()];
        while let Some(n) = stack.pop() {
            for m in next(self, &n) {
                if out.insert(m.clone()) {
                    stack.push(m);
                }
            }
        }
    }
}
