//! Parser: ECS examples, precedence, spellings, and errors with their positions.

use crate::placement::{Argument, Expr, Operator, ParseError, Subject, Term, parse};

fn term(subject: Subject, operator: Operator, argument: Argument) -> Expr {
    Expr::Term(Term {
        subject,
        operator,
        argument,
    })
}

fn attr(name: &str, operator: Operator, value: &str) -> Expr {
    term(
        Subject::Attribute(name.into()),
        operator,
        Argument::Value(value.into()),
    )
}

fn list(values: &[&str]) -> Argument {
    Argument::List(values.iter().map(|v| v.to_string()).collect())
}

fn and(l: Expr, r: Expr) -> Expr {
    Expr::And(Box::new(l), Box::new(r))
}

fn or(l: Expr, r: Expr) -> Expr {
    Expr::Or(Box::new(l), Box::new(r))
}

fn not(e: Expr) -> Expr {
    Expr::Not(Box::new(e))
}

fn err(input: &str) -> ParseError {
    parse(input).expect_err(input)
}

#[test]
fn ecs_documentation_examples_parse() {
    assert_eq!(
        parse("attribute:ecs.instance-type == t2.small").unwrap(),
        attr("ecs.instance-type", Operator::Equals, "t2.small")
    );
    assert_eq!(
        parse("attribute:ecs.availability-zone in [us-east-1a, us-east-1b]").unwrap(),
        term(
            Subject::Attribute("ecs.availability-zone".into()),
            Operator::In,
            list(&["us-east-1a", "us-east-1b"])
        )
    );
    assert_eq!(
        parse(
            "attribute:ecs.instance-type =~ g2.* and attribute:ecs.availability-zone != us-east-1d"
        )
        .unwrap(),
        and(
            attr("ecs.instance-type", Operator::Matches, "g2.*"),
            attr("ecs.availability-zone", Operator::NotEquals, "us-east-1d")
        )
    );
    assert_eq!(
        parse("task:group == service:production").unwrap(),
        term(
            Subject::TaskGroup,
            Operator::Equals,
            Argument::Value("service:production".into())
        )
    );
    assert_eq!(
        parse("not(task:group == database)").unwrap(),
        not(term(
            Subject::TaskGroup,
            Operator::Equals,
            Argument::Value("database".into())
        ))
    );
}

#[test]
fn more_ecs_style_examples_parse() {
    for input in [
        "attribute:ecs.instance-type =~ t2.*",
        "attribute:ecs.instance-type =~ g2.* and attribute:ecs.availability-zone != us-east-1d",
        "ec2InstanceId in ['i-abcd1234', 'i-wxyx7890']",
        "attribute:ecs.os-type == linux",
        "attribute:ecs.cpu-architecture == arm64",
        "attribute:stack exists",
        "attribute:stack !exists",
        "attribute:stack not_exists",
        "attribute:ecs.availability-zone !in [us-east-1a]",
        "attribute:ecs.availability-zone not_in [us-east-1a]",
        "registeredAt < 2018-01-01T00:00:00Z",
        "agentVersion >= 1.20.0",
        "runningTasksCount <= 3",
        "agentConnected == true",
        "(attribute:a == 1 || attribute:b == 2) && !(task:group == x)",
        // Brackets delimit lists, so a pattern using them is quoted.
        "attribute:ecs.instance-type =~ '^t[23]\\..*$'",
    ] {
        assert!(parse(input).is_ok(), "{input}: {:?}", parse(input));
    }
}

#[test]
fn all_operators_in_symbols_and_words() {
    let cases = [
        ("==", "equals", Operator::Equals),
        ("!=", "not_equals", Operator::NotEquals),
        (">", "greater_than", Operator::GreaterThan),
        (">=", "greater_than_equal", Operator::GreaterThanEqual),
        ("<", "less_than", Operator::LessThan),
        ("<=", "less_than_equal", Operator::LessThanEqual),
        ("=~", "matches", Operator::Matches),
        ("!~", "not_matches", Operator::NotMatches),
    ];
    for (symbol, word, op) in cases {
        for spelling in [symbol.to_string(), word.to_string(), word.to_uppercase()] {
            let input = format!("attribute:x {spelling} 5");
            assert_eq!(parse(&input).unwrap(), attr("x", op, "5"), "{input}");
        }
    }
    let none = |op| term(Subject::Attribute("x".into()), op, Argument::None);
    assert_eq!(parse("attribute:x exists").unwrap(), none(Operator::Exists));
    assert_eq!(parse("attribute:x EXISTS").unwrap(), none(Operator::Exists));
    assert_eq!(
        parse("attribute:x ! exists").unwrap(),
        none(Operator::NotExists)
    );
    let listed = |op| term(Subject::Attribute("x".into()), op, list(&["a"]));
    assert_eq!(parse("attribute:x in [a]").unwrap(), listed(Operator::In));
    assert_eq!(
        parse("attribute:x !in [a]").unwrap(),
        listed(Operator::NotIn)
    );
    assert_eq!(
        parse("attribute:x NOT_IN [a]").unwrap(),
        listed(Operator::NotIn)
    );
}

#[test]
fn operators_need_no_spaces() {
    assert_eq!(
        parse("attribute:ecs.instance-type==t2.small").unwrap(),
        attr("ecs.instance-type", Operator::Equals, "t2.small")
    );
    assert_eq!(
        parse("attribute:a!=b&&attribute:c>=3").unwrap(),
        and(
            attr("a", Operator::NotEquals, "b"),
            attr("c", Operator::GreaterThanEqual, "3")
        )
    );
    assert_eq!(
        parse("attribute:x in[a,b]").unwrap(),
        term(
            Subject::Attribute("x".into()),
            Operator::In,
            list(&["a", "b"])
        )
    );
}

#[test]
fn subjects() {
    let eq = |s| term(s, Operator::Equals, Argument::Value("v".into()));
    assert_eq!(
        parse("ec2InstanceId == v").unwrap(),
        eq(Subject::Ec2InstanceId)
    );
    assert_eq!(parse("task:group == v").unwrap(), eq(Subject::TaskGroup));
    assert_eq!(
        parse("agentConnected == v").unwrap(),
        eq(Subject::AgentConnected)
    );
    assert_eq!(
        parse("agentVersion == v").unwrap(),
        eq(Subject::AgentVersion)
    );
    assert_eq!(
        parse("registeredAt == v").unwrap(),
        eq(Subject::RegisteredAt)
    );
    assert_eq!(
        parse("runningTasksCount == v").unwrap(),
        eq(Subject::RunningTasksCount)
    );
    // Subject names are case-insensitive; attribute names keep their case.
    assert_eq!(
        parse("EC2INSTANCEID == v").unwrap(),
        eq(Subject::Ec2InstanceId)
    );
    assert_eq!(
        parse("Attribute:My.Label == v").unwrap(),
        eq(Subject::Attribute("My.Label".into()))
    );
}

#[test]
fn literals_keep_special_characters_and_quotes() {
    for value in [
        "g2.*",
        "us-east-1a",
        "service:production",
        "a/b",
        "x_y",
        "^t2\\..+$",
        "1.2.3",
    ] {
        let input = format!("attribute:x == {value}");
        assert_eq!(
            parse(&input).unwrap(),
            attr("x", Operator::Equals, value),
            "{input}"
        );
    }
    assert_eq!(
        parse("attribute:x == 'a b'").unwrap(),
        attr("x", Operator::Equals, "a b")
    );
    assert_eq!(
        parse("attribute:x == \"it's\"").unwrap(),
        attr("x", Operator::Equals, "it's")
    );
    assert_eq!(
        parse("attribute:x == ''").unwrap(),
        attr("x", Operator::Equals, "")
    );
    // In value position a keyword is just a value.
    assert_eq!(
        parse("attribute:x == and").unwrap(),
        attr("x", Operator::Equals, "and")
    );
}

#[test]
fn and_binds_tighter_than_or() {
    let (a, b, c) = (
        attr("a", Operator::Equals, "1"),
        attr("b", Operator::Equals, "2"),
        attr("c", Operator::Equals, "3"),
    );
    assert_eq!(
        parse("attribute:a == 1 or attribute:b == 2 and attribute:c == 3").unwrap(),
        or(a.clone(), and(b.clone(), c.clone()))
    );
    assert_eq!(
        parse("attribute:a == 1 and attribute:b == 2 or attribute:c == 3").unwrap(),
        or(and(a.clone(), b.clone()), c.clone())
    );
    assert_eq!(
        parse("(attribute:a == 1 or attribute:b == 2) and attribute:c == 3").unwrap(),
        and(or(a.clone(), b.clone()), c.clone())
    );
    // Left associative.
    assert_eq!(
        parse("attribute:a == 1 || attribute:b == 2 || attribute:c == 3").unwrap(),
        or(or(a.clone(), b.clone()), c.clone())
    );
    // `not` binds tightest.
    assert_eq!(
        parse("not attribute:a == 1 and attribute:b == 2").unwrap(),
        and(not(a.clone()), b.clone())
    );
    assert_eq!(parse("!!attribute:a == 1").unwrap(), not(not(a.clone())));
    // Keywords are case-insensitive and mix with symbols.
    assert_eq!(
        parse("attribute:a == 1 OR attribute:b == 2 AnD NOT attribute:c == 3").unwrap(),
        or(a, and(b, not(c)))
    );
}

#[test]
fn display_is_canonical_and_minimal() {
    let shown = |s: &str| parse(s).unwrap().to_string();
    assert_eq!(
        shown("(attribute:a==1 || attribute:b equals 2) && !(task:group == x)"),
        "(attribute:a == 1 or attribute:b == 2) and not task:group == x"
    );
    assert_eq!(
        shown("attribute:a == 1 or (attribute:b == 2 or attribute:c == 3)"),
        "attribute:a == 1 or (attribute:b == 2 or attribute:c == 3)"
    );
    assert_eq!(
        shown("not (attribute:a exists and attribute:b !exists)"),
        "not (attribute:a exists and attribute:b !exists)"
    );
    assert_eq!(
        shown("ec2InstanceId not_in ['i-1', \"i 2\", \"it's\"]"),
        "ec2InstanceId !in [i-1, 'i 2', \"it's\"]"
    );
}

#[test]
fn error_positions_and_messages() {
    let e = err("attribute:ecs.instance-type");
    assert_eq!(e.column, 28);
    assert_eq!(
        e.to_string(),
        "memberOf expression: expected an operator after 'attribute:ecs.instance-type', \
         found the end of the expression at column 28"
    );
    let e = err("attribute:ecs.instance-type t2.small");
    assert_eq!(
        (e.column, e.message.as_str()),
        (
            29,
            "expected an operator after 'attribute:ecs.instance-type', found 't2.small'"
        )
    );

    let cases: &[(&str, usize, &str)] = &[
        ("", 1, "expected a term"),
        ("   ", 4, "expected a term"),
        ("attribute:x ==", 15, "expected a value after '=='"),
        ("attribute:x == a and", 21, "expected a term"),
        (
            "attribute:x == a b",
            18,
            "expected 'and', 'or' or the end of the expression, found 'b'",
        ),
        ("foo == bar", 1, "unknown subject 'foo'"),
        ("attribute: == a", 1, "an attribute name is missing"),
        ("== a", 1, "expected a subject"),
        ("(attribute:x == a", 1, "unclosed '('"),
        (
            "(attribute:x == a]",
            18,
            "expected 'and', 'or' or ')', found ']'",
        ),
        ("attribute:x == a)", 17, "found ')'"),
        (
            "attribute:x in a",
            16,
            "expected a list such as [a, b] after 'in'",
        ),
        ("attribute:x in []", 17, "the list after 'in' is empty"),
        ("attribute:x in [a,]", 19, "expected a value in the list"),
        (
            "attribute:x in [a b]",
            19,
            "expected ',' or ']' in the list, found 'b'",
        ),
        (
            "attribute:x in [a",
            18,
            "expected ',' or ']' in the list, found the end",
        ),
        (
            "attribute:x == [a]",
            16,
            "'==' takes a single value, not a list",
        ),
        ("attribute:x = a", 13, "equality is written '=='"),
        ("attribute:x ~ a", 13, "'=~'"),
        ("attribute:x == a & attribute:y == b", 18, "expected '&&'"),
        ("attribute:x == a | attribute:y == b", 18, "expected '||'"),
        ("attribute:x ! a", 13, "expected '!exists' or '!in'"),
        ("attribute:x == 'a", 16, "unterminated quoted value"),
        (
            "attribute:x contains a",
            13,
            "expected an operator after 'attribute:x', found 'contains'",
        ),
        ("'attribute:x' == a", 1, "expected a subject"),
        ("not", 4, "expected a term"),
        ("ünïcode == a", 1, "unknown subject 'ünïcode'"),
        ("attribute:é ==", 15, "expected a value"),
    ];
    for (input, column, fragment) in cases {
        let e = err(input);
        assert_eq!(e.column, *column, "{input}: {e}");
        assert!(e.message.contains(fragment), "{input}: {e}");
        assert!(e.to_string().starts_with("memberOf expression: "), "{e}");
    }
}

#[test]
fn length_and_nesting_are_bounded() {
    let long = format!("attribute:x == {}", "a".repeat(2000));
    let e = err(&long);
    assert_eq!(e.column, 2001);
    assert!(e.message.contains("2000"), "{e}");

    let deep = format!("{}attribute:x exists{}", "(".repeat(40), ")".repeat(40));
    assert!(err(&deep).message.contains("nested too deeply"));
    let nots = format!("{}attribute:x exists", "not ".repeat(40));
    assert!(err(&nots).message.contains("nested too deeply"));
    let ok = format!("{}attribute:x exists{}", "(".repeat(30), ")".repeat(30));
    assert!(parse(&ok).is_ok());
}

#[test]
fn from_str_parses() {
    let e: Expr = "task:group == web".parse().unwrap();
    assert_eq!(e, parse("task:group == web").unwrap());
}
