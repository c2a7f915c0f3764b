//! The tenant tree, cached in memory: every request's tenant check walks it,
//! so it must not cost a database round trip. Reloaded after tenant writes.

use std::collections::HashMap;
use std::sync::RwLock;

use uuid::Uuid;

#[derive(Default)]
pub struct TenantTree {
    inner: RwLock<TreeData>,
}

#[derive(Default, Clone)]
struct TreeData {
    /// tenant -> parent; the top tenant is its own parent.
    parent: HashMap<Uuid, Uuid>,
    master: Option<Uuid>,
}

impl TenantTree {
    pub fn replace(&self, pairs: impl IntoIterator<Item = (Uuid, Uuid)>) {
        let parent: HashMap<Uuid, Uuid> = pairs.into_iter().collect();
        let master = parent.iter().find(|(k, v)| k == v).map(|(k, _)| *k);
        if let Ok(mut data) = self.inner.write() {
            *data = TreeData { parent, master };
        }
    }

    pub fn master(&self) -> Option<Uuid> {
        self.inner.read().ok().and_then(|d| d.master)
    }

    pub fn exists(&self, tenant: Uuid) -> bool {
        self.inner
            .read()
            .map(|d| d.parent.contains_key(&tenant))
            .unwrap_or(false)
    }

    /// True when `tenant` is `ancestor` or below it.
    pub fn is_within(&self, ancestor: Uuid, tenant: Uuid) -> bool {
        let Ok(data) = self.inner.read() else { return false };
        let mut current = tenant;
        // Bounded walk: a corrupted (cyclic) tree must not hang a request.
        for _ in 0..=data.parent.len() {
            if current == ancestor {
                return true;
            }
            match data.parent.get(&current) {
                Some(p) if *p != current => current = *p,
                _ => return false,
            }
        }
        false
    }

    /// The strict ancestors of `tenant`, nearest first.
    pub fn ancestors(&self, tenant: Uuid) -> Vec<Uuid> {
        let Ok(data) = self.inner.read() else { return vec![] };
        let mut out = Vec::new();
        let mut current = tenant;
        while let Some(p) = data.parent.get(&current) {
            if *p == current || out.len() > data.parent.len() {
                break;
            }
            out.push(*p);
            current = *p;
        }
        out
    }

    /// `root` and all its descendants.
    pub fn subtree(&self, root: Uuid) -> Vec<Uuid> {
        let Ok(data) = self.inner.read() else { return vec![] };
        let mut children: HashMap<Uuid, Vec<Uuid>> = HashMap::new();
        for (t, p) in &data.parent {
            if t != p {
                children.entry(*p).or_default().push(*t);
            }
        }
        let mut out = Vec::new();
        if !data.parent.contains_key(&root) {
            return out;
        }
        let mut stack = vec![root];
        while let Some(t) = stack.pop() {
            if out.len() > data.parent.len() {
                break;
            }
            out.push(t);
            if let Some(c) = children.get(&t) {
                stack.extend(c.iter().copied());
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn within_and_subtree() {
        let (m, a, b, c) = (Uuid::new_v4(), Uuid::new_v4(), Uuid::new_v4(), Uuid::new_v4());
        let tree = TenantTree::default();
        tree.replace([(m, m), (a, m), (b, a), (c, m)]);
        assert_eq!(tree.master(), Some(m));
        assert!(tree.is_within(m, b));
        assert!(tree.is_within(a, b));
        assert!(!tree.is_within(b, a));
        assert!(!tree.is_within(c, b));
        let mut sub = tree.subtree(a);
        sub.sort();
        let mut want = vec![a, b];
        want.sort();
        assert_eq!(sub, want);
        assert_eq!(tree.subtree(m).len(), 4);
        assert!(tree.subtree(Uuid::new_v4()).is_empty());
        assert_eq!(tree.ancestors(b), vec![a, m]);
        assert!(tree.ancestors(m).is_empty());
    }

    #[test]
    fn cycle_does_not_hang() {
        let (a, b) = (Uuid::new_v4(), Uuid::new_v4());
        let tree = TenantTree::default();
        tree.replace([(a, b), (b, a)]);
        assert!(!tree.is_within(Uuid::new_v4(), a));
    }
}
