fn main() {
    std::process::exit(iowhy::cli::main());
}
