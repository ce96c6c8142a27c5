/// `login.html`: the sign-in form, with its own CSRF token and where to go afterwards.
struct LoginPage: PageModel {
    var title = "Sign in"
    var loginCsrf: String
    var next: String
    var error: String?
    var username: String
}

/// `password.html`: changing one's password (required after an admin set it).
struct PasswordPage: PageModel {
    var title = "Change password"
    var required: Bool
    var error: String?
}

/// `error.html`: an HTTP error, for a browser.
struct ErrorPage: PageModel {
    var title: String
    var message: String
}
