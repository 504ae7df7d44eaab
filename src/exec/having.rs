//! HAVING over merged groups: the condition is evaluated on each final group row, its aggregates and
//! columns read from the result columns the plan added. Three-valued logic, as SQL's.

use std::cmp::Ordering;

use sqlparser::ast::{BinaryOperator, Expr, InTarget, UnaryOperator, Value};

use super::cell::{compare_numbers, ColumnInfo, Row};
use crate::error::{Error, Result};
use crate::route::merge::Having;
use crate::sql::analyze::expr_byte_span;

#[derive(Debug, Clone, PartialEq)]
enum V {
    Null,
    Num(String),
    Str(Vec<u8>),
    Bool(bool),
}

fn unsupported(e: &Expr) -> Error {
    Error::unsupported(format!("HAVING expression '{e}' is not supported across shards"))
}

fn num_text(f: f64) -> String {
    if f == f.trunc() && f.abs() < 1e15 {
        format!("{}", f as i64)
    } else {
        format!("{f}")
    }
}

struct Eval<'a> {
    h: &'a Having,
    row: &'a Row,
    cols: &'a [ColumnInfo],
}

impl Eval<'_> {
    fn column(&self, e: &Expr) -> Option<V> {
        // only names and function calls stand for result columns (a span may cover less than its
        // expression: `x IS NULL` spans just `x`)
        if !matches!(e, Expr::Identifier(_) | Expr::CompoundIdentifier(_) | Expr::Function(_)) {
            return None;
        }
        let (a, b) = expr_byte_span(&self.h.sql, e)?;
        let text = self.h.sql.get(a..b)?.to_ascii_lowercase();
        let (_, idx) = self.h.refs.iter().find(|(t, _)| *t == text)?;
        let cell = self.row.get(*idx)?;
        Some(match cell {
            None => V::Null,
            Some(v) if self.cols.get(*idx).is_some_and(ColumnInfo::is_numeric) => {
                V::Num(String::from_utf8_lossy(v).into_owned())
            }
            Some(v) => V::Str(v.clone()),
        })
    }

    fn value(&self, e: &Expr) -> Result<V> {
        if let Some(v) = self.column(e) {
            return Ok(v);
        }
        Ok(match e {
            Expr::Nested(inner) => self.value(inner)?,
            Expr::Value(v) => match &v.value {
                Value::Number(n, _) => V::Num(n.to_string()),
                Value::SingleQuotedString(s) | Value::DoubleQuotedString(s) => {
                    V::Str(crate::sql::escapes::unmask(s).into_owned().into_bytes())
                }
                Value::Null => V::Null,
                Value::Boolean(b) => V::Bool(*b),
                _ => return Err(unsupported(e)),
            },
            Expr::UnaryOp { op: UnaryOperator::Not, expr } => match self.truth(expr)? {
                None => V::Null,
                Some(b) => V::Bool(!b),
            },
            Expr::UnaryOp { op: UnaryOperator::Minus, expr } => match self.value(expr)? {
                V::Null => V::Null,
                V::Num(n) => V::Num(n.strip_prefix('-').map(str::to_string).unwrap_or_else(|| format!("-{n}"))),
                _ => return Err(unsupported(e)),
            },
            Expr::IsNull(x) => V::Bool(self.value(x)? == V::Null),
            Expr::IsNotNull(x) => V::Bool(self.value(x)? != V::Null),
            Expr::Between { expr, negated, low, high } => {
                let v = self.value(expr)?;
                let (lo, hi) = (self.cmp(&v, &self.value(low)?), self.cmp(&v, &self.value(high)?));
                match (lo, hi) {
                    (Some(a), Some(b)) => V::Bool((a != Ordering::Less && b != Ordering::Greater) != *negated),
                    _ => V::Null,
                }
            }
            Expr::In { expr, target: InTarget::List(list), negated, .. } => {
                let v = self.value(expr)?;
                let mut any_null = false;
                let mut hit = false;
                for item in list {
                    match self.cmp(&v, &self.value(item)?) {
                        Some(Ordering::Equal) => hit = true,
                        None => any_null = true,
                        _ => {}
                    }
                }
                if hit {
                    V::Bool(!*negated)
                } else if any_null {
                    V::Null
                } else {
                    V::Bool(*negated)
                }
            }
            Expr::BinaryOp { left, op, right } => match op {
                BinaryOperator::And => match (self.truth(left)?, self.truth(right)?) {
                    (Some(false), _) | (_, Some(false)) => V::Bool(false),
                    (Some(true), Some(true)) => V::Bool(true),
                    _ => V::Null,
                },
                BinaryOperator::Or => match (self.truth(left)?, self.truth(right)?) {
                    (Some(true), _) | (_, Some(true)) => V::Bool(true),
                    (Some(false), Some(false)) => V::Bool(false),
                    _ => V::Null,
                },
                BinaryOperator::Eq
                | BinaryOperator::NotEq
                | BinaryOperator::Lt
                | BinaryOperator::LtEq
                | BinaryOperator::Gt
                | BinaryOperator::GtEq => {
                    let (l, r) = (self.value(left)?, self.value(right)?);
                    match self.cmp(&l, &r) {
                        None => V::Null,
                        Some(o) => V::Bool(match op {
                            BinaryOperator::Eq => o == Ordering::Equal,
                            BinaryOperator::NotEq => o != Ordering::Equal,
                            BinaryOperator::Lt => o == Ordering::Less,
                            BinaryOperator::LtEq => o != Ordering::Greater,
                            BinaryOperator::Gt => o == Ordering::Greater,
                            _ => o != Ordering::Less,
                        }),
                    }
                }
                BinaryOperator::Plus | BinaryOperator::Minus | BinaryOperator::Multiply | BinaryOperator::Divide => {
                    let (l, r) = (self.number(&self.value(left)?), self.number(&self.value(right)?));
                    match (l, r) {
                        (Some(a), Some(b)) => {
                            let v = match op {
                                BinaryOperator::Plus => a + b,
                                BinaryOperator::Minus => a - b,
                                BinaryOperator::Multiply => a * b,
                                _ if b == 0.0 => return Ok(V::Null),
                                _ => a / b,
                            };
                            V::Num(num_text(v))
                        }
                        _ => V::Null,
                    }
                }
                _ => return Err(unsupported(e)),
            },
            _ => return Err(unsupported(e)),
        })
    }

    fn number(&self, v: &V) -> Option<f64> {
        match v {
            V::Num(n) => n.parse().ok(),
            V::Str(s) => String::from_utf8_lossy(s).trim().parse().ok().or(Some(0.0)),
            V::Bool(b) => Some(f64::from(u8::from(*b))),
            V::Null => None,
        }
    }

    /// SQL comparison: NULL with anything is unknown; numbers by value; strings case-insensitively
    /// (the default collations), bytes otherwise.
    fn cmp(&self, a: &V, b: &V) -> Option<Ordering> {
        match (a, b) {
            (V::Null, _) | (_, V::Null) => None,
            (V::Str(x), V::Str(y)) => {
                Some(String::from_utf8_lossy(x).to_lowercase().cmp(&String::from_utf8_lossy(y).to_lowercase()))
            }
            (x, y) => {
                let (p, q) = (self.text(x), self.text(y));
                Some(compare_numbers(p.as_bytes(), q.as_bytes()))
            }
        }
    }

    fn text(&self, v: &V) -> String {
        match v {
            V::Num(n) => n.clone(),
            V::Str(s) => num_text(String::from_utf8_lossy(s).trim().parse().unwrap_or(0.0)),
            V::Bool(b) => u8::from(*b).to_string(),
            V::Null => String::new(),
        }
    }

    fn truth(&self, e: &Expr) -> Result<Option<bool>> {
        Ok(match self.value(e)? {
            V::Null => None,
            V::Bool(b) => Some(b),
            V::Num(n) => Some(compare_numbers(n.as_bytes(), b"0") != Ordering::Equal),
            V::Str(s) => Some(String::from_utf8_lossy(&s).trim().parse::<f64>().unwrap_or(0.0) != 0.0),
        })
    }
}

/// Whether a group row passes the HAVING condition.
pub fn passes(h: &Having, row: &Row, cols: &[ColumnInfo]) -> Result<bool> {
    Ok(Eval { h, row, cols }.truth(&h.expr)? == Some(true))
}

#[cfg(test)]
mod tests {
    use super::*;
    use sqlparser::ast::{SetExpr, Statement};
    use sqlparser::dialect::MySqlDialect;
    use sqlparser::parser::Parser;

    fn having(sql: &str, refs: &[(&str, usize)]) -> Having {
        let stmt = Parser::parse_sql(&MySqlDialect {}, sql).unwrap().remove(0);
        let Statement::Query(q) = stmt else { panic!() };
        let SetExpr::Select(s) = *q.body else { panic!() };
        Having {
            expr: s.having.unwrap(),
            sql: sql.to_string(),
            refs: refs.iter().map(|(t, i)| (t.to_string(), *i)).collect(),
        }
    }

    fn col(ty: u8) -> ColumnInfo {
        ColumnInfo { name: String::new(), ty, flags: 0, decimals: 0, charset: 45 }
    }

    #[test]
    fn three_valued_conditions_over_group_rows() {
        let cols = [col(0xFD), col(0x08), col(0xF6)];
        let h = having(
            "SELECT g, COUNT(*), SUM(x) FROM t GROUP BY g HAVING COUNT(*) > 1 AND (SUM(x) IS NULL OR SUM(x) / COUNT(*) < 2.5) AND g <> 'B'",
            &[("count(*)", 1), ("sum(x)", 2), ("g", 0)],
        );
        let row =
            |g: &str, n: &str, s: Option<&str>| -> Row { vec![Some(g.into()), Some(n.into()), s.map(|x| x.into())] };
        assert!(passes(&h, &row("a", "2", Some("4.00")), &cols).unwrap());
        assert!(!passes(&h, &row("a", "2", Some("6.00")), &cols).unwrap());
        assert!(passes(&h, &row("a", "3", None), &cols).unwrap());
        assert!(!passes(&h, &row("a", "1", None), &cols).unwrap());
        assert!(!passes(&h, &row("b", "5", None), &cols).unwrap(), "strings compare case-insensitively");
        let bad = having("SELECT g FROM t GROUP BY g HAVING ABS(SUM(x)) > 1", &[("g", 0)]);
        assert!(passes(&bad, &row("a", "1", None), &cols).is_err(), "unsupported expressions are errors, not guesses");
    }
}
