//! What the object's crate declares, gathered from every file before any
//! is checked: `use` aliases, globs and `extern crate` renames (so that
//! `use std as s; s::time::SystemTime::now()` is seen as the clock), type
//! aliases, struct and enum fields, function return types, statics, and the
//! names the crate defines itself.
//!
//! This is not the compiler's name resolution: an alias declared in any
//! module counts in every module, and a path is checked under every reading
//! it may have. That over-approximates, which is the safe direction for a
//! check that must not let a hazard through.

use std::collections::{BTreeMap, BTreeSet};
use syn::visit::{self, Visit};
use syn::{Attribute, Type};

/// Alias chains longer than this are not followed (they would be cycles).
const EXPANSION_DEPTH_MAX: usize = 4;
/// How many readings of one path are kept.
const READINGS_MAX: usize = 64;

/// A path as a list of segment names, without a leading `::`.
pub type Segments = Vec<String>;

/// Everything the checker needs to know about the crate as a whole.
#[derive(Default, Debug)]
pub struct CrateIndex {
    /// Local name → the full paths it stands for.
    aliases: BTreeMap<String, BTreeSet<Segments>>,
    /// Prefixes of `use prefix::*`.
    globs: BTreeSet<Segments>,
    /// Names of items (types, functions, modules, variants, …) the crate
    /// defines itself.
    local_items: BTreeSet<String>,
    /// `type Name = …;`
    pub type_aliases: BTreeMap<String, Type>,
    /// Struct (and enum variant) fields by type name: tuple fields are named
    /// `0`, `1`, ….
    pub fields: BTreeMap<String, Vec<(String, Type)>>,
    /// Function and method return types by function name, with the name of
    /// the `impl`'s type (`Self` already replaced by it).
    pub returns: BTreeMap<String, Vec<(Option<String>, Type)>>,
    /// `static` and `const` items by name.
    pub statics: BTreeMap<String, Type>,
    /// Names of functions (free or in an `impl`).
    pub fns: BTreeSet<String>,
    /// Per function name, which parameters (after `self`) take any type (a
    /// generic parameter or `impl Trait`).
    pub generic_params: BTreeMap<String, Vec<bool>>,
    /// `impl Deref for X { type Target = T; }`: X → T.
    pub deref_targets: BTreeMap<String, Type>,
    /// The generic type parameters of the crate's structs, by struct name.
    pub struct_generics: BTreeMap<String, Vec<String>>,
    /// Every written generic type (`Name<args>`), by name, for finding how
    /// generic structs are instantiated.
    pub instantiations: BTreeMap<String, Vec<Vec<Type>>>,
}

/// Whether an item is compiled only for tests (it never runs in a replica).
pub fn is_test_only(attrs: &[Attribute]) -> bool {
    attrs.iter().any(|a| {
        if a.path().is_ident("test") {
            return true;
        }
        if !a.path().is_ident("cfg") {
            return false;
        }
        a.parse_args::<syn::Ident>().is_ok_and(|i| i == "test")
    })
}

/// The attributes of an item.
pub fn item_attrs(i: &syn::Item) -> &[syn::Attribute] {
    match i {
        syn::Item::Const(x) => &x.attrs,
        syn::Item::Enum(x) => &x.attrs,
        syn::Item::ExternCrate(x) => &x.attrs,
        syn::Item::Fn(x) => &x.attrs,
        syn::Item::ForeignMod(x) => &x.attrs,
        syn::Item::Impl(x) => &x.attrs,
        syn::Item::Macro(x) => &x.attrs,
        syn::Item::Mod(x) => &x.attrs,
        syn::Item::Static(x) => &x.attrs,
        syn::Item::Struct(x) => &x.attrs,
        syn::Item::Trait(x) => &x.attrs,
        syn::Item::TraitAlias(x) => &x.attrs,
        syn::Item::Type(x) => &x.attrs,
        syn::Item::Union(x) => &x.attrs,
        syn::Item::Use(x) => &x.attrs,
        _ => &[],
    }
}

/// Whether a parameter of type `ty` accepts any type: `impl Trait`, or a
/// generic parameter (possibly behind references).
fn takes_any_type(ty: &Type, generics: &BTreeSet<String>) -> bool {
    match ty {
        Type::ImplTrait(_) => true,
        Type::Reference(r) => takes_any_type(&r.elem, generics),
        Type::Paren(p) => takes_any_type(&p.elem, generics),
        Type::Path(p) => p
            .path
            .get_ident()
            .is_some_and(|i| generics.contains(&i.to_string())),
        _ => false,
    }
}

/// The segment names of a path.
pub fn segments(path: &syn::Path) -> Segments {
    path.segments.iter().map(|s| s.ident.to_string()).collect()
}

/// The last segment's name of a path type, if it is one.
pub fn type_name(ty: &Type) -> Option<String> {
    match ty {
        Type::Path(p) => p.path.segments.last().map(|s| s.ident.to_string()),
        _ => None,
    }
}

/// `ty` with every `Self` replaced by `self_ty`.
pub fn replace_self(ty: &Type, self_ty: &Type) -> Type {
    match ty {
        Type::Path(p) if p.qself.is_none() && p.path.is_ident("Self") => self_ty.clone(),
        Type::Path(p) => {
            let mut p = p.clone();
            for seg in &mut p.path.segments {
                if let syn::PathArguments::AngleBracketed(a) = &mut seg.arguments {
                    for arg in &mut a.args {
                        if let syn::GenericArgument::Type(t) = arg {
                            *t = replace_self(t, self_ty);
                        }
                    }
                }
            }
            Type::Path(p)
        }
        Type::Reference(r) => {
            let mut r = r.clone();
            *r.elem = replace_self(&r.elem, self_ty);
            Type::Reference(r)
        }
        Type::Tuple(t) => {
            let mut t = t.clone();
            for e in &mut t.elems {
                *e = replace_self(e, self_ty);
            }
            Type::Tuple(t)
        }
        Type::Paren(p) => replace_self(&p.elem, self_ty),
        Type::Group(g) => replace_self(&g.elem, self_ty),
        other => other.clone(),
    }
}

impl CrateIndex {
    /// Indexes every file of the crate.
    pub fn build<'a>(files: impl IntoIterator<Item = &'a syn::File>) -> CrateIndex {
        let mut collector = Collector {
            index: CrateIndex::default(),
            self_ty: None,
        };
        for f in files {
            collector.visit_file(f);
        }
        collector.index
    }

    /// Whether the crate defines an item called `name`.
    pub fn is_local_item(&self, name: &str) -> bool {
        self.local_items.contains(name)
    }

    /// Every reading of `path`: itself, with each alias replaced by what it
    /// stands for (at any position, repeatedly), and under each glob import
    /// when its first segment is not a name the crate knows.
    pub fn readings(&self, path: &[String], with_globs: bool) -> Vec<Segments> {
        let mut out: Vec<Segments> = vec![path.to_vec()];
        let mut frontier = out.clone();
        for _ in 0..EXPANSION_DEPTH_MAX {
            let mut next = Vec::new();
            for p in &frontier {
                for (i, seg) in p.iter().enumerate() {
                    let Some(targets) = self.aliases.get(seg) else {
                        continue;
                    };
                    for t in targets {
                        let mut reading = t.clone();
                        reading.extend_from_slice(&p[i + 1..]);
                        if !out.contains(&reading) && out.len() < READINGS_MAX {
                            out.push(reading.clone());
                            next.push(reading);
                        }
                    }
                }
            }
            if next.is_empty() {
                break;
            }
            frontier = next;
        }
        let globbable = with_globs
            && path.first().is_some_and(|first| {
                !self.aliases.contains_key(first)
                    && !self.local_items.contains(first)
                    && !matches!(first.as_str(), "crate" | "self" | "super" | "Self")
            });
        if globbable {
            for g in &self.globs {
                let mut reading = g.clone();
                reading.extend_from_slice(path);
                if !out.contains(&reading) && out.len() < READINGS_MAX {
                    out.push(reading);
                }
            }
        }
        out
    }

    /// The names a type's path may stand for (its own last segment and
    /// those of the paths its aliases stand for).
    pub fn type_names(&self, path: &syn::Path) -> Vec<String> {
        let mut names: Vec<String> = self
            .readings(&segments(path), false)
            .into_iter()
            .filter_map(|r| r.last().cloned())
            .collect();
        names.dedup();
        names
    }

    fn alias(&mut self, name: String, target: Segments) {
        if target.last() != Some(&name) || target.len() > 1 {
            self.aliases.entry(name).or_default().insert(target);
        }
    }

    fn use_tree(&mut self, tree: &syn::UseTree, prefix: &mut Segments) {
        match tree {
            syn::UseTree::Path(p) => {
                prefix.push(p.ident.to_string());
                self.use_tree(&p.tree, prefix);
                prefix.pop();
            }
            syn::UseTree::Name(n) if n.ident == "self" => {
                if let Some(last) = prefix.last() {
                    self.alias(last.clone(), prefix.clone());
                }
            }
            syn::UseTree::Name(n) => {
                let mut target = prefix.clone();
                target.push(n.ident.to_string());
                self.alias(n.ident.to_string(), target);
            }
            syn::UseTree::Rename(r) => {
                let mut target = prefix.clone();
                if r.ident != "self" {
                    target.push(r.ident.to_string());
                }
                if r.rename != "_" {
                    self.alias(r.rename.to_string(), target);
                }
            }
            syn::UseTree::Glob(_) => {
                self.globs.insert(prefix.clone());
            }
            syn::UseTree::Group(g) => {
                for t in &g.items {
                    self.use_tree(t, prefix);
                }
            }
        }
    }
}

/// The first pass: fills a [`CrateIndex`].
struct Collector {
    index: CrateIndex,
    /// The type of the `impl` being read.
    self_ty: Option<Type>,
}

impl Collector {
    fn item(&mut self, name: &syn::Ident) {
        self.index.local_items.insert(name.to_string());
    }

    fn fields(&mut self, owner: &syn::Ident, fields: &syn::Fields) {
        let entry = self.index.fields.entry(owner.to_string()).or_default();
        for (i, f) in fields.iter().enumerate() {
            let name = f.ident.as_ref().map_or(i.to_string(), |n| n.to_string());
            entry.push((name, f.ty.clone()));
        }
    }

    fn signature(&mut self, sig: &syn::Signature) {
        self.index.fns.insert(sig.ident.to_string());
        let generics: BTreeSet<String> = sig
            .generics
            .type_params()
            .map(|p| p.ident.to_string())
            .collect();
        let any_type: Vec<bool> = sig
            .inputs
            .iter()
            .filter_map(|input| match input {
                syn::FnArg::Typed(pt) => Some(takes_any_type(&pt.ty, &generics)),
                syn::FnArg::Receiver(_) => None,
            })
            .collect();
        if any_type.iter().any(|g| *g) {
            self.index
                .generic_params
                .insert(sig.ident.to_string(), any_type);
        }
        let syn::ReturnType::Type(_, ret) = &sig.output else {
            return;
        };
        let ret = match &self.self_ty {
            Some(s) => replace_self(ret, s),
            None => (**ret).clone(),
        };
        let owner = self.self_ty.as_ref().and_then(type_name);
        self.index
            .returns
            .entry(sig.ident.to_string())
            .or_default()
            .push((owner, ret));
    }
}

impl<'ast> Visit<'ast> for Collector {
    fn visit_item(&mut self, i: &'ast syn::Item) {
        let attrs = match i {
            syn::Item::Fn(f) => &f.attrs,
            syn::Item::Mod(m) => &m.attrs,
            syn::Item::Impl(m) => &m.attrs,
            syn::Item::Use(u) => &u.attrs,
            _ => return visit::visit_item(self, i),
        };
        if !is_test_only(attrs) {
            visit::visit_item(self, i);
        }
    }

    fn visit_item_use(&mut self, u: &'ast syn::ItemUse) {
        self.index.use_tree(&u.tree, &mut Vec::new());
    }

    fn visit_item_extern_crate(&mut self, e: &'ast syn::ItemExternCrate) {
        if let Some((_, rename)) = &e.rename
            && rename != "_"
        {
            self.index
                .alias(rename.to_string(), vec![e.ident.to_string()]);
        }
    }

    fn visit_item_struct(&mut self, s: &'ast syn::ItemStruct) {
        self.item(&s.ident);
        let generics: Vec<String> = s
            .generics
            .type_params()
            .map(|p| p.ident.to_string())
            .collect();
        if !generics.is_empty() {
            self.index
                .struct_generics
                .insert(s.ident.to_string(), generics);
        }
        self.fields(&s.ident, &s.fields);
        visit::visit_item_struct(self, s);
    }

    fn visit_item_enum(&mut self, e: &'ast syn::ItemEnum) {
        self.item(&e.ident);
        for v in &e.variants {
            self.item(&v.ident);
            self.fields(&e.ident, &v.fields);
        }
        visit::visit_item_enum(self, e);
    }

    fn visit_item_union(&mut self, u: &'ast syn::ItemUnion) {
        self.item(&u.ident);
        let fields = syn::Fields::Named(u.fields.clone());
        self.fields(&u.ident, &fields);
        visit::visit_item_union(self, u);
    }

    fn visit_item_type(&mut self, t: &'ast syn::ItemType) {
        self.item(&t.ident);
        self.index
            .type_aliases
            .insert(t.ident.to_string(), (*t.ty).clone());
        visit::visit_item_type(self, t);
    }

    fn visit_item_trait(&mut self, t: &'ast syn::ItemTrait) {
        self.item(&t.ident);
        visit::visit_item_trait(self, t);
    }

    fn visit_item_mod(&mut self, m: &'ast syn::ItemMod) {
        self.item(&m.ident);
        visit::visit_item_mod(self, m);
    }

    fn visit_item_const(&mut self, c: &'ast syn::ItemConst) {
        self.item(&c.ident);
        self.index
            .statics
            .insert(c.ident.to_string(), (*c.ty).clone());
        visit::visit_item_const(self, c);
    }

    fn visit_item_static(&mut self, s: &'ast syn::ItemStatic) {
        self.item(&s.ident);
        self.index
            .statics
            .insert(s.ident.to_string(), (*s.ty).clone());
        visit::visit_item_static(self, s);
    }

    fn visit_item_macro(&mut self, m: &'ast syn::ItemMacro) {
        if let Some(name) = &m.ident {
            self.item(name);
        }
    }

    fn visit_item_fn(&mut self, f: &'ast syn::ItemFn) {
        self.item(&f.sig.ident);
        let outer = self.self_ty.take();
        self.signature(&f.sig);
        visit::visit_item_fn(self, f);
        self.self_ty = outer;
    }

    fn visit_item_impl(&mut self, i: &'ast syn::ItemImpl) {
        let derefs = i
            .trait_
            .as_ref()
            .and_then(|(_, path, _)| path.segments.last())
            .is_some_and(|s| s.ident == "Deref");
        if derefs && let Some(owner) = type_name(&i.self_ty) {
            for item in &i.items {
                if let syn::ImplItem::Type(t) = item
                    && t.ident == "Target"
                {
                    self.index.deref_targets.insert(owner.clone(), t.ty.clone());
                }
            }
        }
        let outer = self.self_ty.replace((*i.self_ty).clone());
        visit::visit_item_impl(self, i);
        self.self_ty = outer;
    }

    fn visit_impl_item_fn(&mut self, f: &'ast syn::ImplItemFn) {
        self.signature(&f.sig);
        visit::visit_impl_item_fn(self, f);
    }

    fn visit_trait_item_fn(&mut self, f: &'ast syn::TraitItemFn) {
        self.signature(&f.sig);
        visit::visit_trait_item_fn(self, f);
    }

    fn visit_type_path(&mut self, t: &'ast syn::TypePath) {
        if let Some(last) = t.path.segments.last()
            && let syn::PathArguments::AngleBracketed(a) = &last.arguments
        {
            let args: Vec<Type> = a
                .args
                .iter()
                .filter_map(|arg| match arg {
                    syn::GenericArgument::Type(t) => Some(t.clone()),
                    _ => None,
                })
                .collect();
            self.index
                .instantiations
                .entry(last.ident.to_string())
                .or_default()
                .push(args);
        }
        visit::visit_type_path(self, t);
    }
}
