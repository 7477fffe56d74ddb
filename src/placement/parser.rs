//! Parses the ECS cluster query language into an [`Expr`].
//!
//! Precedence, tightest first: `not`/`!`, then `and`/`&&`, then `or`/`||`; `and` and `or` associate to the left,
//! and parentheses group. So `a or b and not c` reads as `a or (b and (not c))`. ECS documents only that
//! parentheses set precedence; this order is the usual one for boolean languages.
//!
//! Keywords (`and`, `or`, `not`), word operators (`equals`, `not_equals`, `greater_than`, `greater_than_equal`,
//! `less_than`, `less_than_equal`, `exists`, `not_exists`, `in`, `not_in`, `matches`, `not_matches`) and subject
//! names are case-insensitive. Literals keep their case. The parser checks the grammar only: whether a subject
//! accepts an operator, and whether Kubernetes can express the term, is decided when mapping.

use std::str::FromStr;

use super::ast::{Argument, Arity, Expr, Operator, Subject, Term};
use super::lexer::{Tok, Token, lex};

/// The longest expression ECS accepts, in characters.
pub const MAX_EXPRESSION_LEN: usize = 2000;

/// How deeply `not` and parentheses may nest; keeps recursion bounded whatever the input.
const MAX_NESTING: usize = 32;

const SUBJECTS: &str = "attribute:<name>, ec2InstanceId, task:group, agentConnected, agentVersion, \
                        registeredAt or runningTasksCount";

/// A memberOf expression that does not follow the cluster query language grammar.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("memberOf expression: {message} at column {column}")]
pub struct ParseError {
    /// 1-based column, in characters, where the problem was found.
    pub column: usize,
    /// What is wrong, in ECS words.
    pub message: String,
}

impl ParseError {
    pub(crate) fn new(column: usize, message: impl Into<String>) -> Self {
        ParseError {
            column,
            message: message.into(),
        }
    }
}

/// Parses a memberOf expression.
pub fn parse(input: &str) -> Result<Expr, ParseError> {
    let len = input.chars().count();
    if len > MAX_EXPRESSION_LEN {
        return Err(ParseError::new(
            MAX_EXPRESSION_LEN + 1,
            format!("too long: ECS allows at most {MAX_EXPRESSION_LEN} characters"),
        ));
    }
    let mut parser = Parser {
        tokens: lex(input)?,
        pos: 0,
        depth: 0,
        end_column: len + 1,
    };
    let expr = parser.or()?;
    match parser.peek() {
        None => Ok(expr),
        Some(t) => Err(ParseError::new(
            t.column,
            format!(
                "expected 'and', 'or' or the end of the expression, found {}",
                t.describe()
            ),
        )),
    }
}

impl FromStr for Expr {
    type Err = ParseError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        parse(s)
    }
}

struct Parser {
    tokens: Vec<Token>,
    pos: usize,
    depth: usize,
    end_column: usize,
}

fn is_keyword(tok: &Tok, keyword: &str) -> bool {
    matches!(tok, Tok::Word(w) if w.eq_ignore_ascii_case(keyword))
}

impl Parser {
    fn peek(&self) -> Option<&Token> {
        self.tokens.get(self.pos)
    }

    fn next(&mut self) -> Option<Token> {
        let t = self.tokens.get(self.pos).cloned();
        self.pos += usize::from(t.is_some());
        t
    }

    /// The column of the next token, or just past the end.
    fn column(&self) -> usize {
        self.peek().map_or(self.end_column, |t| t.column)
    }

    /// "found X" for error messages.
    fn found(&self) -> String {
        self.peek()
            .map_or_else(|| "the end of the expression".to_string(), Token::describe)
    }

    fn error<T>(&self, message: String) -> Result<T, ParseError> {
        Err(ParseError::new(self.column(), message))
    }

    fn or(&mut self) -> Result<Expr, ParseError> {
        let mut left = self.and()?;
        while self
            .peek()
            .is_some_and(|t| t.tok == Tok::OrOr || is_keyword(&t.tok, "or"))
        {
            self.pos += 1;
            let right = self.and()?;
            left = Expr::Or(Box::new(left), Box::new(right));
        }
        Ok(left)
    }

    fn and(&mut self) -> Result<Expr, ParseError> {
        let mut left = self.unary()?;
        while self
            .peek()
            .is_some_and(|t| t.tok == Tok::AndAnd || is_keyword(&t.tok, "and"))
        {
            self.pos += 1;
            let right = self.unary()?;
            left = Expr::And(Box::new(left), Box::new(right));
        }
        Ok(left)
    }

    fn unary(&mut self) -> Result<Expr, ParseError> {
        let Some(token) = self.peek().cloned() else {
            return self
                .error("expected a term such as 'attribute:ecs.instance-type == t2.small'".into());
        };
        let negation = token.tok == Tok::Bang || is_keyword(&token.tok, "not");
        if !negation && token.tok != Tok::LParen {
            return self.term().map(Expr::Term);
        }
        if self.depth >= MAX_NESTING {
            return Err(ParseError::new(
                token.column,
                format!(
                    "nested too deeply (at most {MAX_NESTING} levels of 'not' and parentheses)"
                ),
            ));
        }
        self.depth += 1;
        self.pos += 1;
        let result = if negation {
            self.unary().map(|e| Expr::Not(Box::new(e)))
        } else {
            self.parenthesised(token.column)
        };
        self.depth -= 1;
        result
    }

    /// The rest of `( expr )`, the `(` at `open` already taken.
    fn parenthesised(&mut self, open: usize) -> Result<Expr, ParseError> {
        let inner = self.or()?;
        match self.next() {
            Some(Token {
                tok: Tok::RParen, ..
            }) => Ok(inner),
            None => Err(ParseError::new(open, "unclosed '('")),
            Some(t) => Err(ParseError::new(
                t.column,
                format!("expected 'and', 'or' or ')', found {}", t.describe()),
            )),
        }
    }

    fn term(&mut self) -> Result<Term, ParseError> {
        let (word, column) = match self.peek() {
            Some(Token {
                tok: Tok::Word(w),
                column,
            }) => (w.clone(), *column),
            _ => {
                return self.error(format!(
                    "expected a subject ({SUBJECTS}), found {}",
                    self.found()
                ));
            }
        };
        let subject = subject(&word, column)?;
        self.pos += 1;
        let operator = self.operator(&word)?;
        let argument = match operator.arity() {
            Arity::None => Argument::None,
            Arity::Value => Argument::Value(self.literal(operator)?),
            Arity::List => Argument::List(self.list(operator)?),
        };
        Ok(Term {
            subject,
            operator,
            argument,
        })
    }

    fn operator(&mut self, subject: &str) -> Result<Operator, ParseError> {
        let missing = |p: &Self| {
            p.error(format!(
                "expected an operator after '{subject}', found {}",
                p.found()
            ))
        };
        let op = match self.peek().map(|t| &t.tok) {
            Some(Tok::Op(op)) => *op,
            Some(Tok::Word(w)) => match word_operator(w) {
                Some(op) => op,
                None => return missing(self),
            },
            Some(Tok::Bang) => {
                let after = self.tokens.get(self.pos + 1);
                match after.map(|t| &t.tok) {
                    Some(t) if is_keyword(t, "exists") => {
                        self.pos += 1;
                        Operator::NotExists
                    }
                    Some(t) if is_keyword(t, "in") => {
                        self.pos += 1;
                        Operator::NotIn
                    }
                    _ => {
                        return self
                            .error(format!("expected '!exists' or '!in' after '{subject}'"));
                    }
                }
            }
            _ => return missing(self),
        };
        self.pos += 1;
        Ok(op)
    }

    fn literal(&mut self, operator: Operator) -> Result<String, ParseError> {
        match self.peek().map(|t| &t.tok) {
            Some(Tok::Word(v) | Tok::Quoted(v)) => {
                let v = v.clone();
                self.pos += 1;
                Ok(v)
            }
            Some(Tok::LBracket) => self.error(format!(
                "'{operator}' takes a single value, not a list; use 'in' for a list"
            )),
            _ => self.error(format!(
                "expected a value after '{operator}', found {}",
                self.found()
            )),
        }
    }

    fn list(&mut self, operator: Operator) -> Result<Vec<String>, ParseError> {
        if !matches!(self.peek().map(|t| &t.tok), Some(Tok::LBracket)) {
            return self.error(format!(
                "expected a list such as [a, b] after '{operator}', found {}",
                self.found()
            ));
        }
        self.pos += 1;
        let mut values = Vec::new();
        loop {
            match self.peek().map(|t| &t.tok) {
                Some(Tok::Word(v) | Tok::Quoted(v)) => {
                    values.push(v.clone());
                    self.pos += 1;
                }
                Some(Tok::RBracket) if values.is_empty() => {
                    return self.error(format!("the list after '{operator}' is empty"));
                }
                _ => {
                    return self.error(format!(
                        "expected a value in the list, found {}",
                        self.found()
                    ));
                }
            }
            match self.peek().map(|t| &t.tok) {
                Some(Tok::Comma) => self.pos += 1,
                Some(Tok::RBracket) => {
                    self.pos += 1;
                    return Ok(values);
                }
                _ => {
                    return self.error(format!(
                        "expected ',' or ']' in the list, found {}",
                        self.found()
                    ));
                }
            }
        }
    }
}

/// Reads a subject word; `column` is where it starts.
fn subject(word: &str, column: usize) -> Result<Subject, ParseError> {
    const PREFIX: &str = "attribute:";
    let lower = word.to_ascii_lowercase();
    if lower.starts_with(PREFIX) {
        // The prefix is ASCII, so it has the same length in `word` as in `lower`.
        let name = word.get(PREFIX.len()..).unwrap_or_default();
        if name.is_empty() {
            return Err(ParseError::new(
                column,
                "an attribute name is missing after 'attribute:'",
            ));
        }
        return Ok(Subject::Attribute(name.to_string()));
    }
    match lower.as_str() {
        "ec2instanceid" => Ok(Subject::Ec2InstanceId),
        "task:group" => Ok(Subject::TaskGroup),
        "agentconnected" => Ok(Subject::AgentConnected),
        "agentversion" => Ok(Subject::AgentVersion),
        "registeredat" => Ok(Subject::RegisteredAt),
        "runningtaskscount" => Ok(Subject::RunningTasksCount),
        _ => Err(ParseError::new(
            column,
            format!("unknown subject '{word}'; expected {SUBJECTS}"),
        )),
    }
}

/// The operators ECS also spells as words.
fn word_operator(word: &str) -> Option<Operator> {
    let op = match word.to_ascii_lowercase().as_str() {
        "equals" => Operator::Equals,
        "not_equals" => Operator::NotEquals,
        "greater_than" => Operator::GreaterThan,
        "greater_than_equal" => Operator::GreaterThanEqual,
        "less_than" => Operator::LessThan,
        "less_than_equal" => Operator::LessThanEqual,
        "exists" => Operator::Exists,
        "not_exists" => Operator::NotExists,
        "in" => Operator::In,
        "not_in" => Operator::NotIn,
        "matches" => Operator::Matches,
        "not_matches" => Operator::NotMatches,
        _ => return None,
    };
    Some(op)
}
