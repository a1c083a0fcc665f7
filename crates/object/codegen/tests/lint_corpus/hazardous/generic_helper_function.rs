//! A `HashSet` handed to the crate's own generic function, which iterates it.
use std::collections::HashSet;

fn render(items: impl IntoIterator<Item = String>) -> String {
    items.into_iter().collect::<Vec<_>>().join(",")
}

fn count_all<T: IntoIterator>(items: T) -> usize {
    items.into_iter().count()
}

#[derive(Default)]
pub struct Obj {
    tags: HashSet<String>,
}

impl Obj {
    pub fn show(&self) -> String {
        render(self.tags.clone()) //~ (passed to `render`, which takes any type and may iterate it)
    }

    pub fn n(&self) -> usize {
        count_all(&self.tags) //~ passed to `count_all`
    }
}
