pub struct Session;
