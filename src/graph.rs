//! The gold graph: the necessary quantities of a problem by *name*, with values and parents.
//!
//! This is the contract between the composer (which builds it), the dataset (which stores it
//! in the `graph` column) and the verifier (which checks predicted traces against it). It
//! carries names rather than trace letters, so nothing here depends on how a trace is written.

use crate::composer::{Combine, Mode, Problem, Quantity};
use crate::template::Template;

/// What a gold node is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum NodeKind {
    /// An instance stated as a literal constant.
    Constant,
    /// An instance computed from other quantities.
    Instance,
    /// A location total (implied sum of the location's instances).
    Total,
    /// Reverse mode: the constant leaf whose value is hidden and asked for.
    Unknown,
}

impl NodeKind {
    /// The kind of needed node `i` of `p`.
    pub fn of(p: &Problem, i: usize) -> NodeKind {
        let n = &p.needed()[i];
        match (n.q, n.combine) {
            _ if p.hidden == Some(i) => NodeKind::Unknown,
            (Quantity::Total { .. }, _) => NodeKind::Total,
            (_, Combine::Const(_)) => NodeKind::Constant,
            _ => NodeKind::Instance,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            NodeKind::Constant => "constant",
            NodeKind::Instance => "instance",
            NodeKind::Total => "total",
            NodeKind::Unknown => "unknown",
        }
    }

    pub fn parse(s: &str) -> Option<NodeKind> {
        Some(match s {
            "constant" => NodeKind::Constant,
            "instance" => NodeKind::Instance,
            "total" => NodeKind::Total,
            "unknown" => NodeKind::Unknown,
            _ => return None,
        })
    }
}

/// One necessary quantity.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GoldNode {
    /// The name a trace defines it by: "adult owl in Jefferson Circus",
    /// "total number of adult animals in Jefferson Circus".
    pub name: String,
    pub value: i64,
    /// Indices of parent nodes in `GoldGraph::nodes` (all earlier: topological order).
    pub parents: Vec<usize>,
    pub kind: NodeKind,
}

/// The necessary subgraph of a problem in topological order; the last node is the final one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GoldGraph {
    pub mode: Mode,
    pub nodes: Vec<GoldNode>,
    /// The node the question asks for (the final node in forward mode, the hidden leaf in
    /// reverse mode).
    pub asked: usize,
    pub answer: i64,
}

/// Write the name of quantity `q` of problem `p` ("adult owl in South Zoo").
pub fn write_name(out: &mut String, t: &Template, p: &Problem, q: Quantity) {
    let locs = &t.location_groups[p.loc_group as usize].names;
    let items = &t.item_groups[p.item_group as usize].names;
    match q {
        Quantity::Instance { loc, item } => {
            out.push_str(&items[p.items[item as usize] as usize]);
            out.push_str(" in ");
            out.push_str(&locs[p.locs[loc as usize] as usize]);
        }
        Quantity::Total { loc } => {
            out.push_str("total number of ");
            out.push_str(&t.category);
            out.push_str(" in ");
            out.push_str(&locs[p.locs[loc as usize] as usize]);
        }
    }
}

impl GoldGraph {
    /// The gold graph of a composed problem.
    pub fn from_problem(t: &Template, p: &Problem) -> GoldGraph {
        let nodes = p
            .needed()
            .iter()
            .enumerate()
            .map(|(i, n)| {
                let mut name = String::new();
                write_name(&mut name, t, p, n.q);
                GoldNode {
                    name,
                    value: n.value,
                    parents: n.parents().iter().map(|&j| j as usize).collect(),
                    kind: NodeKind::of(p, i),
                }
            })
            .collect();
        GoldGraph {
            mode: p.mode,
            nodes,
            asked: p.asked(),
            answer: p.answer(),
        }
    }
}
