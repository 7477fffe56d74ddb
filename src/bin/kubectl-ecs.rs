//! `kubectl ecs …`: kubectl runs this binary when it is on PATH.

fn main() -> std::process::ExitCode {
    ecs_operator::plugin::main()
}
