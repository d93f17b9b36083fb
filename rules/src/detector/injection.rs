//! placeholder until the injection families land
#[derive(Debug, Clone, Default)]
pub struct InjectionScanner;
impl InjectionScanner {
    pub fn new() -> InjectionScanner {
        InjectionScanner
    }
    pub fn ids(&self) -> impl Iterator<Item = &'static str> + '_ {
        std::iter::empty()
    }
    pub fn id(&self, _family: u16) -> &'static str {
        ""
    }
    pub fn index_of(&self, _id: &str) -> Option<u16> {
        None
    }
    pub fn scan(&self, _text: &str, _out: &mut Vec<(u16, usize, usize)>) {}
}
