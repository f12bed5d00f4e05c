use clap::Parser;

fn main() {
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_env("GESTALT_LOG"))
        .with_writer(std::io::stderr)
        .init();
    let cli = match gestalt::cli::Cli::try_parse() {
        Ok(c) => c,
        Err(e) => {
            let code = if e.use_stderr() { 2 } else { 0 };
            let _ = e.print();
            std::process::exit(code);
        }
    };
    if let Err(e) = gestalt::cli::run(cli) {
        eprintln!("gestalt: {e}");
        std::process::exit(e.exit_code());
    }
}
