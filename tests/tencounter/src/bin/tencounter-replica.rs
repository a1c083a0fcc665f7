fn main() -> std::process::ExitCode {
    concoord::replica::main::<tencounter::TenCounter>()
}
