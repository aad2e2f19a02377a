//! The gold graph: the necessary quantities of a problem by *name*, with values and parents.
//!
//! This is the contract between the composer (which builds it), the dataset (which stores it
//! in the `graph` column) and the verifier (which checks predicted traces against it). It
//! carries names rather than trace letters, so nothing here depends on how a trace is written.
//! A [`GoldItem`] is a gold graph with the keys (id, split, op, template) that verdicts and
//! pass@k tables are grouped by.

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

/// A gold problem with the keys results are grouped by.
#[derive(Debug, Clone)]
pub struct GoldItem {
    pub id: String,
    pub split: String,
    pub op: u32,
    pub template: String,
    pub graph: GoldGraph,
}

/// One gold problem's keys, borrowed.
#[derive(Debug, Clone, Copy)]
pub struct KeyRef<'a> {
    pub id: &'a str,
    pub split: &'a str,
    pub op: u32,
    pub template: &'a str,
    pub mode: Mode,
}

/// Gold problems indexed as `SampleVerdict::gold` (`crate::dataset::verdicts`) indexes them.
pub trait GoldKeys {
    fn key(&self, g: usize) -> KeyRef<'_>;
}

impl GoldKeys for [GoldItem] {
    fn key(&self, g: usize) -> KeyRef<'_> {
        let it = &self[g];
        KeyRef {
            id: &it.id,
            split: &it.split,
            op: it.op,
            template: &it.template,
            mode: it.graph.mode,
        }
    }
}

/// The keys of many gold problems in few allocations: ids in one buffer, splits and
/// templates interned (a dataset has a handful of each), so a streamed audit of a large
/// dataset holds a few bytes per problem besides its id.
#[derive(Debug, Clone, Default)]
pub struct KeyTable {
    ids: String,
    /// End of each id in `ids`.
    ends: Vec<usize>,
    /// (split, template) as indices into `names`, op and mode per problem.
    rows: Vec<(u32, u32, u32, Mode)>,
    names: Vec<String>,
}

impl KeyTable {
    pub fn push(&mut self, id: &str, split: &str, op: u32, template: &str, mode: Mode) {
        self.ids.push_str(id);
        self.ends.push(self.ids.len());
        let (s, t) = (self.intern(split), self.intern(template));
        self.rows.push((s, t, op, mode));
    }

    fn intern(&mut self, name: &str) -> u32 {
        match self.names.iter().position(|n| n == name) {
            Some(i) => i as u32,
            None => {
                self.names.push(name.to_string());
                (self.names.len() - 1) as u32
            }
        }
    }

    pub fn len(&self) -> usize {
        self.ends.len()
    }

    pub fn is_empty(&self) -> bool {
        self.ends.is_empty()
    }

    /// The id of problem `g`.
    pub fn id(&self, g: usize) -> &str {
        let from = if g == 0 { 0 } else { self.ends[g - 1] };
        &self.ids[from..self.ends[g]]
    }
}

impl GoldKeys for KeyTable {
    fn key(&self, g: usize) -> KeyRef<'_> {
        let (s, t, op, mode) = self.rows[g];
        KeyRef {
            id: self.id(g),
            split: &self.names[s as usize],
            op,
            template: &self.names[t as usize],
            mode,
        }
    }
}
