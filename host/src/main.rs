//! The `magg` binary; everything lives in the library.

fn main() -> std::process::ExitCode {
    magg::cli::main()
}
