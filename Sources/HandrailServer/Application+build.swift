import Foundation
import HandrailCore
import HandrailStore
public import Hummingbird
public import Logging
import Metrics
public import Prometheus
import ServiceLifecycle

/// Why `handrail serve` could not start, in one line fit for a terminal.
public struct StartupError: Error, CustomStringConvertible, Sendable {
    public let description: String
}

/// Builds the whole application: database (embedded or `DATABASE_URL`), migrations,
/// router and services. `handrail serve` and the tests call this same function.
///
/// - Parameters:
///   - configuration: what to listen on, which database, where the folders are.
///   - registry: where request metrics go and what `/metrics` shows.
/// - Throws: `StartupError` with a one-line reason when the database cannot be reached or
///   the migrations cannot be applied.
public func buildApplication(
    configuration: HandrailConfiguration,
    registry: PrometheusCollectorRegistry = PrometheusCollectorRegistry(),
    logger: Logger = Logger(label: "handrail")
) async throws -> some ApplicationProtocol {
    let database: HandrailDatabase
    do {
        database = try await HandrailDatabase.open(
            databaseURL: configuration.databaseURL,
            dataDirectory: configuration.dataDirectory,
            maxConnections: configuration.maxDatabaseConnections,
            statementTimeout: configuration.statementTimeout,
            logger: logger
        )
    } catch let error as HandrailDatabase.Unavailable {
        throw StartupError(description: error.description)
    }
    do {
        let migrator = try Migrator(directory: configuration.migrationsDirectory, logger: logger)
        if configuration.applyMigrations {
            try await migrator.migrate(database.pool)
        } else {
            try await migrator.check(database.pool)
        }
        let auth = AuthService(database: database, settings: configuration.security)
        // With migrations skipped the tables may not exist yet; the admin comes at the first
        // start on a current schema.
        let schemaCurrent = configuration.applyMigrations ? true : try await migrator.status(database.pool).isCurrent
        if let onFirstAdmin = configuration.onFirstAdmin, schemaCurrent {
            let password = Secrets.newPassword()
            if try await auth.users.createFirstAdminIfNone(username: "admin", passwordHash: await auth.hashPassword(password)) {
                onFirstAdmin("admin", password)
            }
        }
        if schemaCurrent { await syncRunbooks(configuration.runbooksDirectory, database: database, logger: logger) }
        let pages = try await Pages.load(from: configuration.templatesDirectory, logger: logger)
        let (router, _) = buildRouter(
            database: database,
            migrator: migrator,
            configuration: configuration,
            registry: registry,
            auth: auth,
            pages: pages,
            logger: logger
        )
        return Application(
            router: router,
            server: configuration.connections.server(),
            configuration: .init(address: .hostname(configuration.host, port: configuration.port), serverName: "Handrail"),
            // Stopped in reverse order: the server, then the workers, then the database.
            services: [
                DatabaseService(database: database),
                notificationService(database: database, configuration: configuration, registry: registry, logger: logger),
                GateWatch(
                    gates: GateStore(pool: database.pool),
                    ingest: IngestStore(pool: database.pool),
                    catalog: RunbookCatalog(store: RunbookStore(pool: database.pool)),
                    publicURL: configuration.publicURL,
                    logger: logger
                ),
                StatisticsWatch(statistics: TableStatistics(pool: database.pool), logger: logger),
            ],
            logger: logger
        )
    } catch {
        await database.close()
        if let error = error as? StartupError { throw error }
        if let error = error as? MigrationError { throw StartupError(description: error.description) }
        throw StartupError(description: "cannot prepare the database (\(database.location)): \(error)")
    }
}

/// The workers that deliver notifications and fire escalation steps.
func notificationService(
    database: HandrailDatabase,
    configuration: HandrailConfiguration,
    registry: PrometheusCollectorRegistry,
    logger: Logger
) -> NotificationService {
    let linkKey = LinkKey(store: NotificationStore(pool: database.pool))
    return NotificationService(
        store: NotificationStore(pool: database.pool),
        composer: MessageComposer(
            runbooks: RunbookStore(pool: database.pool),
            linkKey: linkKey,
            publicURL: configuration.publicURL
        ),
        rotations: RotationStore(pool: database.pool),
        handoffs: HandoffStore(pool: database.pool),
        renderer: DocumentRenderer(directory: configuration.templatesDirectory),
        settings: configuration.notifications,
        metrics: NotificationMetrics(factory: PrometheusMetricsFactory(registry: registry)),
        logger: logger
    )
}

/// Adds every route, each with its declared access, and the middleware that wraps them all.
/// Returns the router and the registry of every route's access (tests walk it).
func buildRouter(
    database: HandrailDatabase,
    migrator: Migrator,
    configuration: HandrailConfiguration,
    registry: PrometheusCollectorRegistry,
    auth: AuthService,
    pages: Pages,
    logger: Logger
) -> (Router<HandrailRequestContext>, AccessRegistry) {
    let router = Router(context: HandrailRequestContext.self)
    router.add(middleware: RequestLogMiddleware(logger: logger))
    router.add(middleware: RequestMetricsMiddleware(factory: PrometheusMetricsFactory(registry: registry)))
    router.add(middleware: SecurityHeadersMiddleware())
    router.add(middleware: PageErrorMiddleware(pages: pages))
    router.add(middleware: ErrorMiddleware(logger: logger))
    // Static assets (the stylesheet) are public; they are files, not routes.
    router.add(
        middleware: FileMiddleware(
            configuration.templatesDirectory.appendingPathComponent("static").path,
            urlBasePath: "/static",
            logger: logger
        )
    )
    let access = AccessRegistry()
    let routes = Routes(router: router, registry: access, auth: auth)
    HealthController(
        database: database,
        migrator: migrator,
        registry: registry,
        openAPIFile: configuration.openAPIFile,
        metricsAccess: configuration.security.metricsPublic ? .everyone : .loopbackOr(.viewer),
        logger: logger
    ).addRoutes(to: routes)
    SessionController(auth: auth, pages: pages).addRoutes(to: routes)
    let accessController = AccessController(auth: auth)
    accessController.addRoutes(to: routes)
    AdminPages(pages: pages, access: accessController).addRoutes(to: routes)
    let catalog = RunbookCatalog(store: RunbookStore(pool: database.pool))
    RunbookController(
        store: RunbookStore(pool: database.pool),
        directory: configuration.runbooksDirectory,
        pages: pages,
        onSync: { catalog.invalidate() }
    ).addRoutes(to: routes)
    let incidents = IncidentStore(pool: database.pool)
    IngestController(
        ingest: IngestStore(pool: database.pool),
        incidents: incidents,
        catalog: catalog,
        metrics: IngestMetrics(factory: PrometheusMetricsFactory(registry: registry)),
        keyCache: auth.keyCache,
        logger: logger
    ).addRoutes(to: routes)
    let incidentController = IncidentController(store: incidents, publicURL: configuration.publicURL)
    incidentController.addRoutes(to: routes)
    let decisions = DecisionController(store: DecisionStore(pool: database.pool))
    decisions.addRoutes(to: routes)
    RotationController(store: RotationStore(pool: database.pool)).addRoutes(to: routes)
    let gates = GateController(store: GateStore(pool: database.pool), publicURL: configuration.publicURL)
    gates.addRoutes(to: routes)
    GatePages(pages: pages, api: gates).addRoutes(to: routes)
    let notifications = NotificationController(
        store: NotificationStore(pool: database.pool),
        audit: AuditStore(pool: database.pool),
        outbound: OutboundGuard(allow: configuration.notifications.webhookAllow)
    )
    notifications.addRoutes(to: routes)
    NotificationPages(
        pages: pages,
        api: notifications,
        linkKey: LinkKey(store: NotificationStore(pool: database.pool)),
        access: accessController
    ).addRoutes(to: routes)
    let renderer = DocumentRenderer(directory: configuration.templatesDirectory)
    let postmortems = PostmortemController(
        store: PostmortemStore(pool: database.pool),
        generator: PostmortemGenerator(pool: database.pool),
        renderer: renderer,
        required: configuration.postmortemRequired
    )
    postmortems.addRoutes(to: routes)
    let handoffs = HandoffController(
        store: HandoffStore(pool: database.pool),
        rotations: RotationStore(pool: database.pool),
        renderer: renderer,
        publicURL: configuration.publicURL
    )
    handoffs.addRoutes(to: routes)
    WebController(
        pages: pages,
        incidents: incidentController,
        decisions: decisions,
        postmortems: postmortems,
        handoffs: handoffs,
        rotations: RotationStore(pool: database.pool),
        runbooks: RunbookStore(pool: database.pool),
        users: auth.users,
        feed: IncidentFeed(pool: database.pool, logger: logger),
        notificationAPI: notifications,
        gates: gates.store,
        liveLifetime: configuration.liveStreamLifetime,
        liveInterval: configuration.liveRefreshInterval,
        maxLiveStreams: configuration.maxLiveStreams
    ).addRoutes(to: routes)
    return (router, access)
}

/// Syncs the runbooks folder at start. Problems are logged and the previously synced
/// versions stay in force: a broken file must not keep the incident tool down.
func syncRunbooks(_ directory: URL, database: HandrailDatabase, logger: Logger) async {
    do {
        switch try await RunbookDirectory.sync(directory, store: RunbookStore(pool: database.pool), by: "serve") {
        case .synced(let report):
            logger.info(
                "runbooks synced",
                metadata: [
                    "new_versions": "\(report.created.count)", "unchanged": "\(report.unchanged.count)", "retired": "\(report.retired.count)",
                ]
            )
        case .refused(let problems):
            for problem in problems { logger.error("runbook problem: \(problem)") }
            logger.error("runbooks not synced: \(problems.count) problem(s); the versions synced before stay in force")
        }
    } catch {
        logger.error("runbooks not synced", metadata: ["directory": "\(directory.path)", "error": "\(String(reflecting: error))"])
    }
}

/// Owns the database for the life of the server: when the server has shut down (it is
/// the last service, so it stops first), closes the pool and stops the embedded PostgreSQL.
struct DatabaseService: Service {
    let database: HandrailDatabase

    func run() async throws {
        try? await gracefulShutdown()
        Logger(label: "handrail").info("shutdown: closing the database (\(database.location))")
        await database.close()
    }
}
