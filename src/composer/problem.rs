//! The composed problem: a DAG of named integer quantities over a location × item world.
//!
//! Nodes are stored in topological order. The first `n_needed` nodes are the necessary subgraph
//! (the ancestors of the queried node, which is the last of them); the rest are distractors,
//! which may depend on needed nodes and on earlier distractors but never the other way round.

use std::fmt;

/// Most parents a node can have: a location total over a full row of 5 items.
pub const MAX_PARENTS: usize = 5;
/// Most nodes in one problem: 5 × 5 instance slots plus 5 location totals.
pub const MAX_NODES: usize = 30;

/// Forward: ask for the final node. Reverse: hide one constant leaf, state the final value, ask
/// for the hidden leaf (SPEC §1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Mode {
    Forward,
    Reverse,
}

impl Mode {
    pub const ALL: [Mode; 2] = [Mode::Forward, Mode::Reverse];

    pub fn as_str(self) -> &'static str {
        match self {
            Mode::Forward => "forward",
            Mode::Reverse => "reverse",
        }
    }

    pub fn parse(s: &str) -> Option<Mode> {
        match s {
            "forward" => Some(Mode::Forward),
            "reverse" => Some(Mode::Reverse),
            _ => None,
        }
    }
}

impl fmt::Display for Mode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Which quantity a node is. `loc` and `item` index the problem's chosen locations and items.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Quantity {
    /// "ITEM in LOCATION"
    Instance { loc: u8, item: u8 },
    /// "total number of CATEGORY in LOCATION": the sum of every instance of that location the
    /// problem mentions; implied, never stated.
    Total { loc: u8 },
}

/// How an instance combines its parents (a total always sums).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Combine {
    /// No parents: the value is a constant 1..=4.
    Const(u8),
    /// One parent: a copy. Two: their sum. Three or more: the sum of all, folded left.
    Sum,
    /// Exactly two parents: first minus second.
    Diff,
}

/// An optional outer constant: "k plus EXPR" (k in 1..=4) or "k times EXPR" (k in 2..=4).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Outer {
    None,
    Plus(u8),
    Times(u8),
}

/// One quantity of the problem and its definition.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Node {
    pub q: Quantity,
    pub combine: Combine,
    pub outer: Outer,
    parents: [u8; MAX_PARENTS],
    n_parents: u8,
    pub value: i64,
}

impl Node {
    pub(crate) fn new(
        q: Quantity,
        combine: Combine,
        outer: Outer,
        parents: &[u8],
        value: i64,
    ) -> Node {
        let mut p = [0u8; MAX_PARENTS];
        p[..parents.len()].copy_from_slice(parents);
        Node {
            q,
            combine,
            outer,
            parents: p,
            n_parents: parents.len() as u8,
            value,
        }
    }

    /// Indices (into `Problem::nodes`) of the quantities this one is computed from.
    pub fn parents(&self) -> &[u8] {
        &self.parents[..self.n_parents as usize]
    }

    /// This node's edges in op(G): one per parent, plus one for a literal constant.
    pub fn cost(&self) -> u32 {
        let consts = match (self.combine, self.outer) {
            (Combine::Const(_), _) => 1,
            (_, Outer::None) => 0,
            _ => 1,
        };
        self.n_parents as u32 + consts
    }

    pub fn is_total(&self) -> bool {
        matches!(self.q, Quantity::Total { .. })
    }
}

/// A composed problem, everything needed to render it and to check answers against it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    pub mode: Mode,
    /// op(G) of the necessary subgraph.
    pub op: u32,
    /// Indices into the template's `location_groups` / `item_groups`.
    pub loc_group: u8,
    pub item_group: u8,
    /// Chosen names: indices into the group's `names`; `Quantity::loc` indexes this list.
    pub locs: Vec<u8>,
    pub items: Vec<u8>,
    /// Topological order; needed nodes first, the query is `nodes[n_needed - 1]`.
    pub nodes: Vec<Node>,
    pub n_needed: usize,
    /// Reverse mode: the needed constant leaf whose value is hidden and asked for.
    pub hidden: Option<usize>,
    /// The order of the stated sentences: node indices of every instance (needed and
    /// distractor); in reverse mode [`FINAL_STATEMENT`] marks the sentence stating the final
    /// node's value.
    pub order: Vec<u8>,
    /// The trace's letters, in the order fresh letters are taken.
    pub letters: Vec<u8>,
}

/// Marker in [`Problem::order`] for the reverse-mode statement of the final node's value.
pub const FINAL_STATEMENT: u8 = u8::MAX;

impl Problem {
    /// Index of the final node of the DAG (the forward question).
    pub fn final_node(&self) -> usize {
        self.n_needed - 1
    }

    /// The node the question asks for.
    pub fn asked(&self) -> usize {
        self.hidden.unwrap_or(self.final_node())
    }

    /// The answer to the question.
    pub fn answer(&self) -> i64 {
        self.nodes[self.asked()].value
    }

    pub fn needed(&self) -> &[Node] {
        &self.nodes[..self.n_needed]
    }

    pub fn n_distractors(&self) -> usize {
        self.nodes.len() - self.n_needed
    }

    /// Longest path (in edges between quantities) from a leaf to the final node.
    pub fn depth(&self) -> u32 {
        let mut d = [0u32; MAX_NODES];
        for (i, n) in self.needed().iter().enumerate() {
            d[i] = n
                .parents()
                .iter()
                .map(|&p| d[p as usize] + 1)
                .max()
                .unwrap_or(0);
        }
        d[self.final_node()]
    }

    /// Whether the question asks for a location total.
    pub fn asks_total(&self) -> bool {
        self.nodes[self.asked()].is_total()
    }
}
