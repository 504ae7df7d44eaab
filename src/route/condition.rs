//! Sharding values from a WHERE clause: `=`, `IN`, `BETWEEN`, `<`, `<=`, `>`, `>=` on the sharding
//! column (qualified or not, literal on either side, prepared parameters bound), AND → intersection,
//! OR → union; anything else (NOT, functions, subqueries) → all partitions.

use std::collections::BTreeSet;

use sqlparser::ast::{BinaryOperator, Expr, InTarget, Statement, UnaryOperator, Value};

use crate::rule::PartitionFunction;
use crate::sql::analyze::Analysis;

/// A literal value as routing sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Lit {
    Null,
    /// The value as Mycat's functions read it: numbers as written, strings without quotes.
    Text(String),
}

/// A bound prepared-statement parameter.
#[derive(Debug, Clone, PartialEq)]
pub enum Param {
    Null,
    /// A number, in decimal text.
    Number(String),
    /// A string, date or blob parameter, as the client's bytes.
    Bytes(Vec<u8>),
}

impl Param {
    fn lit(&self) -> Lit {
        match self {
            Param::Null => Lit::Null,
            Param::Number(n) => Lit::Text(n.clone()),
            Param::Bytes(b) => Lit::Text(String::from_utf8_lossy(b).into_owned()),
        }
    }
}

/// Binds prepared-statement parameters to the placeholders of one statement, in textual order.
pub struct Binder<'a> {
    params: &'a [Param],
    /// (address of a placeholder `Expr`, parameter index), sorted by address.
    index: std::borrow::Cow<'a, [(usize, usize)]>,
}

impl<'a> Binder<'a> {
    /// Walks `stmt` for its placeholders (statements re-parsed by routing itself).
    pub fn new(stmt: &Statement, params: &'a [Param]) -> Self {
        let index =
            if params.is_empty() { Vec::new() } else { crate::sql::analyze::placeholders_and_subqueries(stmt).0 };
        Binder { params, index: std::borrow::Cow::Owned(index) }
    }

    /// For the analysed statement `stmt` (one of `a`'s): the placeholders found at parse time.
    pub fn of(a: &'a Analysis, stmt: &Statement, params: &'a [Param]) -> Self {
        match a.stmts.first() {
            Some(first) if std::ptr::eq(first, stmt) => {
                Binder { params, index: std::borrow::Cow::Borrowed(a.placeholders.as_slice()) }
            }
            _ => Self::new(stmt, params),
        }
    }

    /// The literal an expression stands for, if it is one.
    pub fn literal(&self, e: &Expr) -> Option<Lit> {
        match e {
            Expr::Value(v) => match &v.value {
                Value::Number(n, _) => Some(Lit::Text(n.to_string())),
                Value::SingleQuotedString(s) | Value::DoubleQuotedString(s) => {
                    Some(Lit::Text(crate::sql::escapes::unmask(s).into_owned()))
                }
                Value::Boolean(b) => Some(Lit::Text(if *b { "1" } else { "0" }.into())),
                Value::Null => Some(Lit::Null),
                Value::Placeholder(_) => {
                    let addr = e as *const Expr as usize;
                    let at = self.index.binary_search_by_key(&addr, |(a, _)| *a).ok()?;
                    let i = self.index.get(at)?.1;
                    Some(self.params.get(i)?.lit())
                }
                _ => None,
            },
            Expr::UnaryOp { op: UnaryOperator::Minus, expr } => match self.literal(expr)? {
                Lit::Text(t) if t.starts_with(|c: char| c.is_ascii_digit()) => Some(Lit::Text(format!("-{t}"))),
                _ => None,
            },
            Expr::UnaryOp { op: UnaryOperator::Plus, expr } => self.literal(expr),
            Expr::Nested(inner) => self.literal(inner),
            _ => None,
        }
    }
}

/// Which table's column routing looks for: the column and the names it may be qualified with.
pub struct Target<'a> {
    pub column: &'a str,
    /// Table name and alias; a qualified column must use one of them.
    pub qualifiers: Vec<String>,
    /// An unqualified column counts (the statement names one table).
    pub unqualified: bool,
}

impl Target<'_> {
    pub fn is_column(&self, e: &Expr) -> bool {
        match e {
            Expr::Identifier(i) => self.unqualified && i.value.eq_ignore_ascii_case(self.column),
            Expr::CompoundIdentifier(parts) => match parts.as_slice() {
                [.., q, c] => {
                    c.value.eq_ignore_ascii_case(self.column)
                        && self.qualifiers.iter().any(|n| n.eq_ignore_ascii_case(&q.value))
                }
                _ => false,
            },
            Expr::Nested(inner) => self.is_column(inner),
            _ => false,
        }
    }
}

/// Partition indexes a condition allows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Parts {
    All,
    Only(BTreeSet<usize>),
}

impl Parts {
    fn and(self, other: Parts) -> Parts {
        match (self, other) {
            (Parts::All, x) | (x, Parts::All) => x,
            (Parts::Only(a), Parts::Only(b)) => Parts::Only(a.intersection(&b).copied().collect()),
        }
    }

    fn or(self, other: Parts) -> Parts {
        match (self, other) {
            (Parts::Only(mut a), Parts::Only(b)) => {
                a.extend(b);
                Parts::Only(a)
            }
            _ => Parts::All,
        }
    }
}

/// Evaluates WHERE conditions on `target` with partition function `f`.
pub struct Router<'a> {
    pub target: &'a Target<'a>,
    pub func: &'a dyn PartitionFunction,
    pub binder: &'a Binder<'a>,
}

impl Router<'_> {
    pub fn parts(&self, e: Option<&Expr>) -> Parts {
        match e {
            Some(e) => self.eval(e),
            None => Parts::All,
        }
    }

    fn point(&self, v: &Lit) -> Parts {
        match v {
            Lit::Null => Parts::Only(BTreeSet::new()), // `col = NULL` is never true
            Lit::Text(t) => match self.func.calculate(t) {
                Ok(Some(p)) => Parts::Only([p].into()),
                Ok(None) => Parts::Only(BTreeSet::new()),
                Err(_) => Parts::All, // MySQL would convert the value; no safe narrowing
            },
        }
    }

    fn range(&self, lo: Option<(String, bool)>, hi: Option<(String, bool)>) -> Parts {
        // strict bounds become inclusive for integers; otherwise keep them (a superset is safe)
        let adjust = |b: Option<(String, bool)>, up: bool| -> Option<String> {
            let (v, strict) = b?;
            if strict {
                if let Some(n) = crate::rule::java::parse_long(&v) {
                    let m = if up { n.checked_add(1) } else { n.checked_sub(1) };
                    if let Some(m) = m {
                        return Some(m.to_string());
                    }
                }
            }
            Some(v)
        };
        let (lo, hi) = (adjust(lo, true), adjust(hi, false));
        match self.func.calculate_range(lo.as_deref(), hi.as_deref()) {
            Some(v) => Parts::Only(v.into_iter().collect()),
            None => Parts::All,
        }
    }

    /// An AND chain: integer bounds on the column from all conjuncts merge into one range
    /// (`id > 3 AND x = 1 AND id < 5` → `4..=4`); every other conjunct intersects.
    fn eval_and(&self, e: &Expr) -> Parts {
        fn flatten<'e>(e: &'e Expr, out: &mut Vec<&'e Expr>) {
            match e {
                Expr::BinaryOp { left, op: BinaryOperator::And, right } => {
                    flatten(left, out);
                    flatten(right, out);
                }
                Expr::Nested(inner) if matches!(inner.as_ref(), Expr::BinaryOp { op: BinaryOperator::And, .. }) => {
                    flatten(inner, out)
                }
                other => out.push(other),
            }
        }
        let mut conjuncts = Vec::new();
        flatten(e, &mut conjuncts);
        let (mut lo, mut hi): (Option<i64>, Option<i64>) = (None, None);
        let mut bounded = false;
        let mut acc = Parts::All;
        for c in conjuncts {
            match self.int_bounds(c) {
                Some((l, h)) => {
                    bounded = true;
                    lo = match (lo, l) {
                        (Some(a), Some(b)) => Some(a.max(b)),
                        (a, b) => a.or(b),
                    };
                    hi = match (hi, h) {
                        (Some(a), Some(b)) => Some(a.min(b)),
                        (a, b) => a.or(b),
                    };
                }
                None => acc = acc.and(self.eval(c)),
            }
        }
        if bounded {
            let r = match (lo, hi) {
                (Some(a), Some(b)) if b < a => Parts::Only(BTreeSet::new()),
                _ => self.range(lo.map(|v| (v.to_string(), false)), hi.map(|v| (v.to_string(), false))),
            };
            acc = acc.and(r);
        }
        acc
    }

    /// Inclusive integer bounds a single comparison or BETWEEN puts on the column.
    fn int_bounds(&self, e: &Expr) -> Option<(Option<i64>, Option<i64>)> {
        let int = |x: &Expr| match self.text(x)? {
            Lit::Text(t) => crate::rule::java::parse_long(&t),
            Lit::Null => None,
        };
        match e {
            Expr::Nested(inner) => self.int_bounds(inner),
            Expr::Between { expr, negated: false, low, high } if self.target.is_column(expr) => {
                Some((Some(int(low)?), Some(int(high)?)))
            }
            Expr::BinaryOp { left, op, right } => {
                let (v, op) = if self.target.is_column(left) {
                    (int(right)?, op.clone())
                } else if self.target.is_column(right) {
                    let flipped = match op {
                        BinaryOperator::Lt => BinaryOperator::Gt,
                        BinaryOperator::LtEq => BinaryOperator::GtEq,
                        BinaryOperator::Gt => BinaryOperator::Lt,
                        BinaryOperator::GtEq => BinaryOperator::LtEq,
                        _ => return None,
                    };
                    (int(left)?, flipped)
                } else {
                    return None;
                };
                match op {
                    BinaryOperator::Lt => Some((None, Some(v.checked_sub(1)?))),
                    BinaryOperator::LtEq => Some((None, Some(v))),
                    BinaryOperator::Gt => Some((Some(v.checked_add(1)?), None)),
                    BinaryOperator::GtEq => Some((Some(v), None)),
                    _ => None,
                }
            }
            _ => None,
        }
    }

    fn text(&self, e: &Expr) -> Option<Lit> {
        self.binder.literal(e)
    }

    fn eval(&self, e: &Expr) -> Parts {
        match e {
            Expr::Nested(inner) => self.eval(inner),
            Expr::BinaryOp { op: BinaryOperator::And, .. } => self.eval_and(e),
            Expr::BinaryOp { left, op: BinaryOperator::Or, right } => self.eval(left).or(self.eval(right)),
            Expr::BinaryOp { left, op, right } => {
                let (col_left, lit) = if self.target.is_column(left) {
                    (true, self.text(right))
                } else if self.target.is_column(right) {
                    (false, self.text(left))
                } else {
                    return Parts::All;
                };
                let Some(lit) = lit else { return Parts::All };
                let Lit::Text(v) = lit else {
                    return Parts::Only(BTreeSet::new()); // comparisons with NULL are never true
                };
                // normalise to `col OP v`
                let op = if col_left {
                    op.clone()
                } else {
                    match op {
                        BinaryOperator::Lt => BinaryOperator::Gt,
                        BinaryOperator::LtEq => BinaryOperator::GtEq,
                        BinaryOperator::Gt => BinaryOperator::Lt,
                        BinaryOperator::GtEq => BinaryOperator::LtEq,
                        other => other.clone(),
                    }
                };
                match op {
                    BinaryOperator::Eq => self.point(&Lit::Text(v)),
                    BinaryOperator::Lt => self.range(None, Some((v, true))),
                    BinaryOperator::LtEq => self.range(None, Some((v, false))),
                    BinaryOperator::Gt => self.range(Some((v, true)), None),
                    BinaryOperator::GtEq => self.range(Some((v, false)), None),
                    _ => Parts::All,
                }
            }
            Expr::In { expr, target: InTarget::List(list), negated: false, .. } if self.target.is_column(expr) => {
                let mut acc = Parts::Only(BTreeSet::new());
                for item in list {
                    match self.text(item) {
                        Some(v) => acc = acc.or(self.point(&v)),
                        None => return Parts::All,
                    }
                }
                acc
            }
            Expr::Between { expr, negated: false, low, high } if self.target.is_column(expr) => {
                match (self.text(low), self.text(high)) {
                    (Some(Lit::Text(a)), Some(Lit::Text(b))) => self.range(Some((a, false)), Some((b, false))),
                    (Some(Lit::Null), _) | (_, Some(Lit::Null)) => Parts::Only(BTreeSet::new()),
                    _ => Parts::All,
                }
            }
            _ => Parts::All,
        }
    }
}

/// The literals `col = literal` equalities on an all-AND path of `e` assign to the column
/// (used to prove that an UPDATE of the sharding column is a no-op).
pub fn and_equalities(e: Option<&Expr>, target: &Target, binder: &Binder) -> Vec<Lit> {
    fn walk(e: &Expr, target: &Target, binder: &Binder, out: &mut Vec<Lit>) {
        match e {
            Expr::Nested(inner) => walk(inner, target, binder, out),
            Expr::BinaryOp { left, op: BinaryOperator::And, right } => {
                walk(left, target, binder, out);
                walk(right, target, binder, out);
            }
            Expr::BinaryOp { left, op: BinaryOperator::Eq, right } => {
                if target.is_column(left) {
                    out.extend(binder.literal(right));
                } else if target.is_column(right) {
                    out.extend(binder.literal(left));
                }
            }
            _ => {}
        }
    }
    let mut out = Vec::new();
    if let Some(e) = e {
        walk(e, target, binder, &mut out);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rule::partition_by_mod::PartitionByMod;
    use crate::rule::util::Props;
    use sqlparser::dialect::MySqlDialect;
    use sqlparser::parser::Parser;

    fn mod3() -> PartitionByMod {
        let map = [("count".to_string(), "3".to_string())].into();
        PartitionByMod::new(&Props { name: "m", map: &map }).unwrap()
    }

    fn route(sql: &str, params: &[Param]) -> Parts {
        let stmt = Parser::parse_sql(&MySqlDialect {}, sql).unwrap().remove(0);
        let Statement::Query(q) = &stmt else { panic!() };
        let sqlparser::ast::SetExpr::Select(s) = q.body.as_ref() else { panic!() };
        let target = Target { column: "id", qualifiers: vec!["t".into(), "x".into()], unqualified: true };
        let binder = Binder::new(&stmt, params);
        let f = mod3();
        Router { target: &target, func: &f, binder: &binder }.parts(s.selection.as_ref())
    }

    fn only(v: &[usize]) -> Parts {
        Parts::Only(v.iter().copied().collect())
    }

    #[test]
    fn table_of_conditions() {
        let cases: &[(&str, Parts)] = &[
            ("select * from t where id = 4", only(&[1])),
            ("select * from t where 5 = id", only(&[2])),
            ("select * from t x where x.id = 3", only(&[0])),
            ("select * from t where t.ID = '7'", only(&[1])),
            ("select * from t where id in (1, 2, 4)", only(&[1, 2])),
            ("select * from t where id = 1 or id = 3", only(&[0, 1])),
            ("select * from t where id = 1 and id = 4", only(&[1])),
            ("select * from t where id = 1 and id = 2", only(&[])),
            ("select * from t where id = 1 and name = 'x'", only(&[1])),
            ("select * from t where id = 1 or name = 'x'", Parts::All),
            ("select * from t where (id = 1 or id = 2) and id <> 7", only(&[1, 2])),
            ("select * from t where id between 4 and 5", only(&[1, 2])),
            ("select * from t where id > 3 and id < 5", only(&[1])),
            ("select * from t where id >= 3 and id <= 5", only(&[0, 1, 2])),
            ("select * from t where id > 3 and name = 'a' and id < 5", only(&[1])),
            ("select * from t where id > 5 and id < 3", only(&[])),
            ("select * from t where id > 3", Parts::All),
            ("select * from t where not id = 1", Parts::All),
            ("select * from t where id + 0 = 1", Parts::All),
            ("select * from t where abs(id) = 1", Parts::All),
            ("select * from t where id in (select id from u)", Parts::All),
            ("select * from t where id = null", only(&[])),
            ("select * from t where id = -5", only(&[2])),
            ("select * from t", Parts::All),
            ("select * from t where other.id = 1", Parts::All),
        ];
        for (sql, want) in cases {
            assert_eq!(&route(sql, &[]), want, "{sql}");
        }
    }

    #[test]
    fn prepared_parameters_bind_in_order() {
        let n = |s: &str| Param::Number(s.into());
        assert_eq!(
            route("select * from t where name = ? and id = ?", &[Param::Bytes(b"x".to_vec()), n("5")]),
            only(&[2])
        );
        assert_eq!(route("select * from t where id in (?, ?)", &[n("3"), Param::Bytes(b"4".to_vec())]), only(&[0, 1]));
        assert_eq!(route("select * from t where id = ?", &[Param::Null]), only(&[]));
        assert_eq!(route("select * from t where id = ?", &[]), Parts::All, "unbound: all");
    }
}
