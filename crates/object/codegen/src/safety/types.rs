//! Just enough typing to tell a hash collection from a `BTreeMap`: what the
//! checker knows about an expression ([`Inferred`]), and, for a written
//! type, whether it is (or holds) a randomly seeded hash collection,
//! following type aliases, `use` renames, smart pointers and the crate's own
//! structs, and what its elements are.
//!
//! The check reads source, it does not compile it, so an expression's type
//! is often unknown. Unknown values derived from something that holds a hash
//! collection are [`Inferred::Suspect`] and treated as hash collections:
//! losing track of a type must not let a hazard through.

use super::hazards::{RANDOM_HASH_TYPES, RANDOM_HASHERS};
use super::resolve::{CrateIndex, type_name};
use std::collections::BTreeSet;
use syn::{GenericArgument, PathArguments, Type, parse_quote};

/// Type aliases and struct fields nest at most this deep.
const DEPTH_MAX: usize = 8;

/// What the checker knows about an expression's type.
// Short-lived values of a one-shot check: boxing the type would only add
// allocations.
#[allow(clippy::large_enum_variant)]
#[derive(Clone, Debug)]
pub enum Inferred {
    /// Its written or derived type.
    Known(Type),
    /// Nothing, and nothing suggests a hash collection.
    Unknown,
    /// Nothing exact, but it comes from a value holding a hash collection.
    Suspect,
}

/// How a container's elements are reached.
#[allow(clippy::large_enum_variant)]
pub enum Shape {
    /// A map from `K` to `V`.
    Map(Type, Type),
    /// A set of `T`.
    Set(Type),
    /// A sequence (vector, slice, array, heap, list) of `T`.
    Seq(Type),
    /// `Option<T>` or `Result<T, _>`.
    Opt(Type),
    /// A cell or lock around `T`.
    Cell(Type),
    /// An iterator over `T` (the checker's own marker type).
    Iter(Type),
    /// A map entry with values `V` (the checker's own marker type).
    Entry(Type),
    /// Anything else.
    Other,
}

/// The checker's marker for "an iterator over T".
pub fn iter_of(item: Type) -> Type {
    parse_quote!(__ConcoordIter<#item>)
}

/// The checker's marker for "a map entry with values V".
pub fn entry_of(value: Type) -> Type {
    parse_quote!(__ConcoordEntry<#value>)
}

/// `Option<T>`.
pub fn option_of(t: Type) -> Type {
    parse_quote!(Option<#t>)
}

/// The type arguments of a path type's last segment.
pub fn type_args(ty: &Type) -> Vec<Type> {
    let Type::Path(p) = ty else {
        return Vec::new();
    };
    let Some(last) = p.path.segments.last() else {
        return Vec::new();
    };
    match &last.arguments {
        PathArguments::AngleBracketed(a) => a
            .args
            .iter()
            .filter_map(|arg| match arg {
                GenericArgument::Type(t) => Some(t.clone()),
                _ => None,
            })
            .collect(),
        _ => Vec::new(),
    }
}

fn infer_placeholder() -> Type {
    parse_quote!(_)
}

/// Wrappers that method calls see through (auto-deref).
const DEREF_WRAPPERS: &[&str] = &[
    "Box",
    "Rc",
    "Arc",
    "Cow",
    "Ref",
    "RefMut",
    "MutexGuard",
    "RwLockReadGuard",
    "RwLockWriteGuard",
    "ManuallyDrop",
    "Pin",
];

impl CrateIndex {
    /// The type an alias name stands for, if `ty` is one.
    fn expand_alias(&self, ty: &Type) -> Option<Type> {
        let Type::Path(p) = ty else {
            return None;
        };
        if p.path.segments.len() != 1 {
            return None;
        }
        self.type_aliases.get(&type_name(ty)?).cloned()
    }

    /// `ty` without references, parentheses, smart pointers, guards and type
    /// aliases: the type whose methods a call on it reaches.
    pub fn peel(&self, ty: &Type) -> Type {
        let mut ty = ty.clone();
        for _ in 0..DEPTH_MAX {
            let next = match &ty {
                Type::Reference(r) => (*r.elem).clone(),
                Type::Paren(p) => (*p.elem).clone(),
                Type::Group(g) => (*g.elem).clone(),
                Type::Path(p) => {
                    let names = self.type_names(&p.path);
                    if names.iter().any(|n| DEREF_WRAPPERS.contains(&n.as_str())) {
                        match type_args(&ty).into_iter().next() {
                            Some(inner) => inner,
                            None => return ty,
                        }
                    } else if let Some(target) =
                        names.iter().find_map(|n| self.deref_targets.get(n))
                    {
                        target.clone()
                    } else if let Some(expanded) = self.expand_alias(&ty) {
                        expanded
                    } else {
                        return ty;
                    }
                }
                _ => return ty,
            };
            ty = next;
        }
        ty
    }

    /// Whether `ty` (once peeled) is a hash collection with a randomly
    /// seeded hasher (the default one, or an explicit `RandomState`).
    pub fn is_random_hash(&self, ty: &Type) -> bool {
        let ty = self.peel(ty);
        let Type::Path(p) = &ty else {
            return false;
        };
        let args = type_args(&ty);
        self.type_names(&p.path).iter().any(|name| {
            RANDOM_HASH_TYPES.iter().any(|(hash, params)| {
                name == hash
                    && args.get(*params).is_none_or(|hasher| {
                        self.mentions(hasher, &|n| RANDOM_HASHERS.contains(&n))
                    })
            })
        })
    }

    /// Whether a value of type `ty` holds a random hash collection anywhere:
    /// itself, a type argument, an alias, or a field of the crate's own
    /// structs and enums.
    pub fn contains_hash(&self, ty: &Type) -> bool {
        self.contains_hash_within(ty, &mut BTreeSet::new(), 0)
    }

    fn contains_hash_within(&self, ty: &Type, seen: &mut BTreeSet<String>, depth: usize) -> bool {
        if depth > DEPTH_MAX {
            return false;
        }
        if self.is_random_hash(ty) {
            return true;
        }
        match ty {
            Type::Path(p) => {
                if let Some(expanded) = self.expand_alias(ty) {
                    return self.contains_hash_within(&expanded, seen, depth + 1);
                }
                if type_args(ty)
                    .iter()
                    .any(|t| self.contains_hash_within(t, seen, depth + 1))
                {
                    return true;
                }
                let Some(name) = p.path.segments.last().map(|s| s.ident.to_string()) else {
                    return false;
                };
                let Some(fields) = self.fields.get(&name) else {
                    return false;
                };
                if !seen.insert(name) {
                    return false;
                }
                fields
                    .iter()
                    .any(|(_, t)| self.contains_hash_within(t, seen, depth + 1))
            }
            Type::Reference(r) => self.contains_hash_within(&r.elem, seen, depth + 1),
            Type::Paren(p) => self.contains_hash_within(&p.elem, seen, depth + 1),
            Type::Group(g) => self.contains_hash_within(&g.elem, seen, depth + 1),
            Type::Slice(s) => self.contains_hash_within(&s.elem, seen, depth + 1),
            Type::Array(a) => self.contains_hash_within(&a.elem, seen, depth + 1),
            Type::Ptr(p) => self.contains_hash_within(&p.elem, seen, depth + 1),
            Type::Tuple(t) => t
                .elems
                .iter()
                .any(|e| self.contains_hash_within(e, seen, depth + 1)),
            _ => false,
        }
    }

    /// Whether `ty`, or an alias or struct it names, mentions a type for
    /// which `pred` holds.
    pub fn mentions(&self, ty: &Type, pred: &dyn Fn(&str) -> bool) -> bool {
        self.mentions_within(ty, pred, &mut BTreeSet::new(), 0)
    }

    fn mentions_within(
        &self,
        ty: &Type,
        pred: &dyn Fn(&str) -> bool,
        seen: &mut BTreeSet<String>,
        depth: usize,
    ) -> bool {
        if depth > DEPTH_MAX {
            return false;
        }
        let text = quote::quote!(#ty).to_string();
        let words: Vec<&str> = text
            .split(|c: char| !c.is_alphanumeric() && c != '_')
            .filter(|w| !w.is_empty())
            .collect();
        for word in words {
            if pred(word) && !self.is_local_item(word) {
                return true;
            }
            let resolved = self.readings(&[word.to_string()], false);
            if resolved
                .iter()
                .filter_map(|r| r.last())
                .any(|last| pred(last))
            {
                return true;
            }
            if !seen.insert(word.to_string()) {
                continue;
            }
            if let Some(alias) = self.type_aliases.get(word)
                && self.mentions_within(alias, pred, seen, depth + 1)
            {
                return true;
            }
            if let Some(fields) = self.fields.get(word)
                && fields
                    .iter()
                    .any(|(_, t)| self.mentions_within(t, pred, seen, depth + 1))
            {
                return true;
            }
        }
        false
    }

    /// How `ty`'s elements are reached.
    pub fn shape(&self, ty: &Type) -> Shape {
        let ty = self.peel(ty);
        match &ty {
            Type::Slice(s) => return Shape::Seq((*s.elem).clone()),
            Type::Array(a) => return Shape::Seq((*a.elem).clone()),
            _ => {}
        }
        let Type::Path(p) = &ty else {
            return Shape::Other;
        };
        let args = type_args(&ty);
        let first = args.first().cloned().unwrap_or_else(infer_placeholder);
        let second = args.get(1).cloned().unwrap_or_else(infer_placeholder);
        for name in self.type_names(&p.path) {
            let shape = match name.as_str() {
                "__ConcoordIter" => Shape::Iter(first.clone()),
                "__ConcoordEntry" => Shape::Entry(first.clone()),
                "Option" | "Result" => Shape::Opt(first.clone()),
                "Vec" | "VecDeque" | "LinkedList" | "BinaryHeap" | "SmallVec" | "ArrayVec" => {
                    Shape::Seq(first.clone())
                }
                "RefCell" | "Cell" | "Mutex" | "RwLock" | "OnceCell" | "OnceLock"
                | "UnsafeCell" => Shape::Cell(first.clone()),
                n if n.ends_with("Map") && args.len() >= 2 => {
                    Shape::Map(first.clone(), second.clone())
                }
                n if n.ends_with("Set") && !args.is_empty() => Shape::Set(first.clone()),
                _ => continue,
            };
            return shape;
        }
        Shape::Other
    }

    /// The type of the items a `for` loop over `ty` binds.
    pub fn item_type(&self, ty: &Type) -> Option<Type> {
        match self.shape(ty) {
            Shape::Map(k, v) => Some(parse_quote!((#k, #v))),
            Shape::Set(t) | Shape::Seq(t) | Shape::Opt(t) | Shape::Iter(t) => Some(t),
            Shape::Cell(_) | Shape::Entry(_) | Shape::Other => None,
        }
    }

    /// Whether field type `field` of struct `owner` is one of its generic
    /// parameters that the crate somewhere fills with a hash collection.
    pub fn generic_field_holds_hash(&self, owner: &str, field: &Type) -> bool {
        let Some(params) = self.struct_generics.get(owner) else {
            return false;
        };
        let Some(position) = type_name(field).and_then(|f| params.iter().position(|p| *p == f))
        else {
            return false;
        };
        self.instantiations.get(owner).is_some_and(|uses| {
            uses.iter()
                .any(|args| args.get(position).is_some_and(|t| self.contains_hash(t)))
        })
    }

    /// What is known about a value of type `ty` when its exact type is lost:
    /// suspect if `ty` holds a hash collection.
    pub fn lost(&self, from: &Inferred) -> Inferred {
        match from {
            Inferred::Known(t) if self.contains_hash(t) => Inferred::Suspect,
            Inferred::Suspect => Inferred::Suspect,
            _ => Inferred::Unknown,
        }
    }

    /// Whether iterating the value visits a random hash collection.
    pub fn is_hash_value(&self, v: &Inferred) -> bool {
        match v {
            Inferred::Known(t) => self.is_random_hash(t),
            Inferred::Suspect => true,
            Inferred::Unknown => false,
        }
    }

    /// Whether formatting or serializing the value reaches a random hash
    /// collection.
    pub fn holds_hash(&self, v: &Inferred) -> bool {
        match v {
            Inferred::Known(t) => self.contains_hash(t),
            Inferred::Suspect => true,
            Inferred::Unknown => false,
        }
    }
}
