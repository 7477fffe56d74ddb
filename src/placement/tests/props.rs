//! Properties: no input makes parsing or mapping panic; printing and parsing agree; group label values are
//! always valid.

use proptest::prelude::*;

use crate::placement::lexer::is_word_char;
use crate::placement::{
    Argument, Arity, Expr, Operator, Subject, Term, group_label_value, is_valid_label_key,
    is_valid_label_value, member_of, member_of_expr, parse,
};

const OPERATORS: [Operator; 12] = [
    Operator::Equals,
    Operator::NotEquals,
    Operator::GreaterThan,
    Operator::GreaterThanEqual,
    Operator::LessThan,
    Operator::LessThanEqual,
    Operator::Exists,
    Operator::NotExists,
    Operator::In,
    Operator::NotIn,
    Operator::Matches,
    Operator::NotMatches,
];

fn subject() -> impl Strategy<Value = Subject> {
    prop_oneof![
        "[^\\s()\\[\\],&|!=<>~'\"]{1,12}"
            .prop_filter("word characters", |n| n.chars().all(is_word_char))
            .prop_map(Subject::Attribute),
        Just(Subject::Ec2InstanceId),
        Just(Subject::TaskGroup),
        Just(Subject::AgentConnected),
        Just(Subject::AgentVersion),
        Just(Subject::RegisteredAt),
        Just(Subject::RunningTasksCount),
    ]
}

/// Any literal the language can write: everything but a literal holding both quote kinds.
fn literal() -> impl Strategy<Value = String> {
    prop_oneof![
        "[a-z0-9.:*/_-]{1,10}",
        "-?[0-9]{1,5}",
        "[^\"]{0,8}",
        "[^']{0,8}",
    ]
}

fn term() -> impl Strategy<Value = Term> {
    (subject(), proptest::sample::select(OPERATORS.to_vec())).prop_flat_map(
        |(subject, operator)| {
            let argument = match operator.arity() {
                Arity::None => Just(Argument::None).boxed(),
                Arity::Value => literal().prop_map(Argument::Value).boxed(),
                Arity::List => proptest::collection::vec(literal(), 1..4)
                    .prop_map(Argument::List)
                    .boxed(),
            };
            argument.prop_map(move |argument| Term {
                subject: subject.clone(),
                operator,
                argument,
            })
        },
    )
}

fn expr() -> impl Strategy<Value = Expr> {
    term()
        .prop_map(Expr::Term)
        .prop_recursive(5, 24, 2, |inner| {
            prop_oneof![
                inner.clone().prop_map(|e| Expr::Not(Box::new(e))),
                (inner.clone(), inner.clone())
                    .prop_map(|(l, r)| Expr::And(Box::new(l), Box::new(r))),
                (inner.clone(), inner).prop_map(|(l, r)| Expr::Or(Box::new(l), Box::new(r))),
            ]
        })
}

/// Text made of the language's own pieces, which reaches deeper into the parser than random characters.
fn tokenish() -> impl Strategy<Value = String> {
    let piece = proptest::sample::select(vec![
        "attribute:ecs.instance-type",
        "attribute:a",
        "attribute:",
        "task:group",
        "ec2InstanceId",
        "runningTasksCount",
        "==",
        "!=",
        ">",
        ">=",
        "<",
        "<=",
        "=~",
        "!~",
        "exists",
        "!exists",
        "in",
        "!in",
        "not_in",
        "and",
        "or",
        "not",
        "&&",
        "||",
        "!",
        "(",
        ")",
        "[",
        "]",
        ",",
        "t2.small",
        "5",
        "-3",
        "'q x'",
        "\"",
        "'",
        "=",
        "&",
        "|",
        "~",
        "g2.*",
        "service:web",
        "é",
    ]);
    proptest::collection::vec(piece, 0..16).prop_map(|pieces| pieces.join(" "))
}

proptest! {
    #[test]
    fn arbitrary_text_never_panics(input in any::<String>()) {
        let _ = parse(&input);
        let _ = member_of(&input);
    }

    #[test]
    fn query_shaped_text_never_panics_and_round_trips(input in tokenish()) {
        if let Ok(parsed) = parse(&input) {
            let _ = member_of_expr(&parsed);
            prop_assert_eq!(parse(&parsed.to_string()), Ok(parsed));
        }
    }

    #[test]
    fn display_parses_back_to_the_same_tree(expr in expr()) {
        let text = expr.to_string();
        prop_assert_eq!(parse(&text), Ok(expr), "text: {}", text);
    }

    #[test]
    fn mapping_never_panics_and_writes_valid_labels(expr in expr()) {
        if let Ok(placement) = member_of_expr(&expr) {
            let terms = placement.node_affinity.map(|n| n.node_selector_terms).unwrap_or_default();
            prop_assert!(!terms.is_empty() || !placement.pod_affinity_terms.is_empty()
                || !placement.pod_anti_affinity_terms.is_empty());
            for req in terms.into_iter().flat_map(|t| t.match_expressions.unwrap_or_default()) {
                prop_assert!(is_valid_label_key(&req.key), "{:?}", req);
                match req.operator.as_str() {
                    "In" | "NotIn" => {
                        let values = req.values.clone().unwrap_or_default();
                        prop_assert!(!values.is_empty() && values.iter().all(|v| is_valid_label_value(v)));
                    }
                    "Gt" | "Lt" => {
                        let values = req.values.clone().unwrap_or_default();
                        prop_assert!(values.len() == 1 && values[0].parse::<i64>().is_ok());
                    }
                    "Exists" | "DoesNotExist" => prop_assert!(req.values.is_none()),
                    other => prop_assert!(false, "operator {}", other),
                }
            }
        }
    }

    #[test]
    fn group_label_value_is_always_valid(
        group in prop_oneof![any::<String>(), ".{0,200}", "[a-z:/_.-]{0,120}"]
    ) {
        let value = group_label_value(&group);
        prop_assert!(is_valid_label_value(&value), "{:?} -> {:?}", group, value);
        prop_assert_eq!(group_label_value(&group), value);
    }

    #[test]
    fn ecs_group_names_stay_readable(group in "(service|family):[a-z0-9]([a-z0-9_-]{0,40}[a-z0-9])?") {
        prop_assert_eq!(group_label_value(&group), group.replace(':', "."));
    }
}
