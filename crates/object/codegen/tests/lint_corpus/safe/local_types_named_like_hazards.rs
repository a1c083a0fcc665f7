//! The object's own types may be called `Command`, `Instant` or `File`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord)]
pub struct Instant(u64);

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Command {
    Start,
    Stop,
}

#[derive(Clone, Debug, Default)]
pub struct File {
    name: String,
}

#[derive(Default)]
pub struct Obj {
    at: Instant,
    files: Vec<File>,
    log: Vec<Command>,
}

impl Obj {
    pub fn run(&mut self, at: u64, name: String) {
        self.at = Instant(at);
        self.files.push(File { name });
        self.log.push(Command::Start);
        let stdin = self.files.len();
        self.log.push(if stdin > 3 { Command::Stop } else { Command::Start });
    }
}
