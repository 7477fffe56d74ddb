//! Splits a memberOf expression into tokens.
//!
//! Literals are bare words (`t2.small`, `us-east-1a`, `service:production`, `g2.*`) or quoted with `'` or `"`
//! (ECS examples quote instance IDs: `ec2InstanceId in ['i-abcd1234']`). A bare word runs until whitespace or
//! one of `( ) [ ] , & | ! = < > ~ ' "`; ECS likewise forbids parentheses inside a single term.

use super::ast::Operator;
use super::parser::ParseError;

/// What a token is.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Tok {
    LParen,
    RParen,
    LBracket,
    RBracket,
    Comma,
    /// `&&`.
    AndAnd,
    /// `||`.
    OrOr,
    /// `!` alone: negation, or the start of `!exists` / `!in`.
    Bang,
    /// A symbolic comparison operator.
    Op(Operator),
    /// A bare word: subject, keyword, word operator or literal, depending on where it stands.
    Word(String),
    /// A quoted literal, without its quotes.
    Quoted(String),
}

/// A token and the 1-based column (in characters) where it starts.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Token {
    pub tok: Tok,
    pub column: usize,
}

/// Whether `c` can be part of a bare word. Every character is whitespace, punctuation or a word character,
/// so the lexer never meets a character it cannot classify.
pub(crate) fn is_word_char(c: char) -> bool {
    !c.is_whitespace()
        && !matches!(
            c,
            '(' | ')' | '[' | ']' | ',' | '&' | '|' | '!' | '=' | '<' | '>' | '~' | '\'' | '"'
        )
}

impl Token {
    /// How an error message names this token.
    pub fn describe(&self) -> String {
        match &self.tok {
            Tok::LParen => "'('".into(),
            Tok::RParen => "')'".into(),
            Tok::LBracket => "'['".into(),
            Tok::RBracket => "']'".into(),
            Tok::Comma => "','".into(),
            Tok::AndAnd => "'&&'".into(),
            Tok::OrOr => "'||'".into(),
            Tok::Bang => "'!'".into(),
            Tok::Op(op) => format!("'{op}'"),
            Tok::Word(w) => format!("'{w}'"),
            Tok::Quoted(q) => format!("the quoted value '{q}'"),
        }
    }
}

/// Splits `input` into tokens.
pub(crate) fn lex(input: &str) -> Result<Vec<Token>, ParseError> {
    let chars: Vec<char> = input.chars().collect();
    let mut tokens = Vec::new();
    let mut i = 0;
    while let Some(&c) = chars.get(i) {
        let column = i + 1;
        let next = chars.get(i + 1).copied();
        let (tok, len) = match (c, next) {
            (c, _) if c.is_whitespace() => {
                i += 1;
                continue;
            }
            ('(', _) => (Tok::LParen, 1),
            (')', _) => (Tok::RParen, 1),
            ('[', _) => (Tok::LBracket, 1),
            (']', _) => (Tok::RBracket, 1),
            (',', _) => (Tok::Comma, 1),
            ('&', Some('&')) => (Tok::AndAnd, 2),
            ('|', Some('|')) => (Tok::OrOr, 2),
            ('&', _) => return Err(ParseError::new(column, "expected '&&' (or 'and')")),
            ('|', _) => return Err(ParseError::new(column, "expected '||' (or 'or')")),
            ('!', Some('=')) => (Tok::Op(Operator::NotEquals), 2),
            ('!', Some('~')) => (Tok::Op(Operator::NotMatches), 2),
            ('!', _) => (Tok::Bang, 1),
            ('=', Some('=')) => (Tok::Op(Operator::Equals), 2),
            ('=', Some('~')) => (Tok::Op(Operator::Matches), 2),
            ('=', _) => {
                return Err(ParseError::new(
                    column,
                    "unexpected '='; equality is written '=='",
                ));
            }
            ('>', Some('=')) => (Tok::Op(Operator::GreaterThanEqual), 2),
            ('>', _) => (Tok::Op(Operator::GreaterThan), 1),
            ('<', Some('=')) => (Tok::Op(Operator::LessThanEqual), 2),
            ('<', _) => (Tok::Op(Operator::LessThan), 1),
            ('~', _) => {
                return Err(ParseError::new(
                    column,
                    "unexpected '~'; a pattern match is written '=~'",
                ));
            }
            ('\'' | '"', _) => {
                let body: String = chars[i + 1..].iter().take_while(|&&q| q != c).collect();
                let len = body.chars().count() + 2;
                if i + len > chars.len() {
                    return Err(ParseError::new(
                        column,
                        format!("unterminated quoted value: missing {c}"),
                    ));
                }
                (Tok::Quoted(body), len)
            }
            _ => {
                let word: String = chars[i..]
                    .iter()
                    .take_while(|&&w| is_word_char(w))
                    .collect();
                let len = word.chars().count();
                (Tok::Word(word), len)
            }
        };
        tokens.push(Token { tok, column });
        i += len;
    }
    Ok(tokens)
}
