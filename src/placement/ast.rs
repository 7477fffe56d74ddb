//! The syntax tree of the ECS cluster query language, and its canonical text form.
//!
//! `Display` prints the canonical spelling (`and`, `or`, `not`, symbolic operators) with only the parentheses the
//! structure needs, so that printing and parsing again gives back the same tree.

use std::fmt;

use super::lexer::is_word_char;

/// A memberOf expression.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Expr {
    /// `subject operator [argument]`.
    Term(Term),
    /// `not expr` or `!expr`.
    Not(Box<Expr>),
    /// `expr and expr` or `expr && expr`.
    And(Box<Expr>, Box<Expr>),
    /// `expr or expr` or `expr || expr`.
    Or(Box<Expr>, Box<Expr>),
}

/// One comparison: `subject operator [argument]`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Term {
    /// What is compared.
    pub subject: Subject,
    /// How it is compared.
    pub operator: Operator,
    /// What it is compared with; its shape always matches [`Operator::arity`].
    pub argument: Argument,
}

/// What a term compares: a container instance attribute or field, or the task groups running on it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Subject {
    /// `attribute:<name>`, e.g. `attribute:ecs.instance-type`.
    Attribute(String),
    /// `ec2InstanceId`.
    Ec2InstanceId,
    /// `task:group`.
    TaskGroup,
    /// `agentConnected`.
    AgentConnected,
    /// `agentVersion`.
    AgentVersion,
    /// `registeredAt`.
    RegisteredAt,
    /// `runningTasksCount`.
    RunningTasksCount,
}

/// A comparison operator.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Operator {
    /// `==`, `equals`.
    Equals,
    /// `!=`, `not_equals`.
    NotEquals,
    /// `>`, `greater_than`.
    GreaterThan,
    /// `>=`, `greater_than_equal`.
    GreaterThanEqual,
    /// `<`, `less_than`.
    LessThan,
    /// `<=`, `less_than_equal`.
    LessThanEqual,
    /// `exists`.
    Exists,
    /// `!exists`, `not_exists`.
    NotExists,
    /// `in`.
    In,
    /// `!in`, `not_in`.
    NotIn,
    /// `=~`, `matches` (a Java regular expression in ECS).
    Matches,
    /// `!~`, `not_matches`.
    NotMatches,
}

/// The argument shape an operator takes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Arity {
    /// No argument (`exists`, `!exists`).
    None,
    /// One literal.
    Value,
    /// A list `[a, b, …]` (`in`, `!in`).
    List,
}

/// A term's argument.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Argument {
    /// For `exists` and `!exists`.
    None,
    /// One literal.
    Value(String),
    /// A non-empty list of literals.
    List(Vec<String>),
}

impl Operator {
    /// The canonical symbol, as `Display` prints it.
    pub fn symbol(self) -> &'static str {
        match self {
            Operator::Equals => "==",
            Operator::NotEquals => "!=",
            Operator::GreaterThan => ">",
            Operator::GreaterThanEqual => ">=",
            Operator::LessThan => "<",
            Operator::LessThanEqual => "<=",
            Operator::Exists => "exists",
            Operator::NotExists => "!exists",
            Operator::In => "in",
            Operator::NotIn => "!in",
            Operator::Matches => "=~",
            Operator::NotMatches => "!~",
        }
    }

    /// The operator that holds exactly when this one does not (for a subject that is present).
    pub fn negated(self) -> Operator {
        match self {
            Operator::Equals => Operator::NotEquals,
            Operator::NotEquals => Operator::Equals,
            Operator::GreaterThan => Operator::LessThanEqual,
            Operator::GreaterThanEqual => Operator::LessThan,
            Operator::LessThan => Operator::GreaterThanEqual,
            Operator::LessThanEqual => Operator::GreaterThan,
            Operator::Exists => Operator::NotExists,
            Operator::NotExists => Operator::Exists,
            Operator::In => Operator::NotIn,
            Operator::NotIn => Operator::In,
            Operator::Matches => Operator::NotMatches,
            Operator::NotMatches => Operator::Matches,
        }
    }

    /// The argument this operator takes.
    pub fn arity(self) -> Arity {
        match self {
            Operator::Exists | Operator::NotExists => Arity::None,
            Operator::In | Operator::NotIn => Arity::List,
            _ => Arity::Value,
        }
    }
}

impl Argument {
    /// The literals of the argument: none, one, or the list.
    pub fn values(&self) -> &[String] {
        match self {
            Argument::None => &[],
            Argument::Value(v) => std::slice::from_ref(v),
            Argument::List(vs) => vs,
        }
    }
}

impl fmt::Display for Subject {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Subject::Attribute(name) => write!(f, "attribute:{name}"),
            Subject::Ec2InstanceId => f.write_str("ec2InstanceId"),
            Subject::TaskGroup => f.write_str("task:group"),
            Subject::AgentConnected => f.write_str("agentConnected"),
            Subject::AgentVersion => f.write_str("agentVersion"),
            Subject::RegisteredAt => f.write_str("registeredAt"),
            Subject::RunningTasksCount => f.write_str("runningTasksCount"),
        }
    }
}

impl fmt::Display for Operator {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.symbol())
    }
}

/// Writes a literal bare when the lexer reads it back as one word, quoted otherwise.
fn write_literal(f: &mut fmt::Formatter<'_>, value: &str) -> fmt::Result {
    if !value.is_empty() && value.chars().all(is_word_char) {
        f.write_str(value)
    } else if value.contains('\'') {
        // The language has no escapes: a literal holding both quote kinds cannot be written (nor parsed).
        write!(f, "\"{value}\"")
    } else {
        write!(f, "'{value}'")
    }
}

impl fmt::Display for Argument {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Argument::None => Ok(()),
            Argument::Value(v) => write_literal(f, v),
            Argument::List(vs) => {
                f.write_str("[")?;
                for (i, v) in vs.iter().enumerate() {
                    if i > 0 {
                        f.write_str(", ")?;
                    }
                    write_literal(f, v)?;
                }
                f.write_str("]")
            }
        }
    }
}

impl fmt::Display for Term {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.subject, self.operator)?;
        match self.argument {
            Argument::None => Ok(()),
            _ => write!(f, " {}", self.argument),
        }
    }
}

/// Binding strength: `or` < `and` < `not`/term.
fn strength(expr: &Expr) -> u8 {
    match expr {
        Expr::Or(..) => 0,
        Expr::And(..) => 1,
        Expr::Not(_) | Expr::Term(_) => 2,
    }
}

/// Writes `expr`, parenthesised when it binds more loosely than its position needs.
fn write_expr(f: &mut fmt::Formatter<'_>, expr: &Expr, needed: u8) -> fmt::Result {
    let paren = strength(expr) < needed;
    if paren {
        f.write_str("(")?;
    }
    match expr {
        Expr::Term(t) => write!(f, "{t}")?,
        Expr::Not(inner) => {
            f.write_str("not ")?;
            write_expr(f, inner, 2)?;
        }
        // Both are left-associative, so a right operand of the same kind needs parentheses.
        Expr::And(l, r) => {
            write_expr(f, l, 1)?;
            f.write_str(" and ")?;
            write_expr(f, r, 2)?;
        }
        Expr::Or(l, r) => {
            write_expr(f, l, 0)?;
            f.write_str(" or ")?;
            write_expr(f, r, 1)?;
        }
    }
    if paren {
        f.write_str(")")?;
    }
    Ok(())
}

impl fmt::Display for Expr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write_expr(f, self, 0)
    }
}
