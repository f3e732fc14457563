package mlops.migration.stack;

import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.Paths;
import java.util.Collections;
import java.util.List;
import java.util.concurrent.CountDownLatch;

import org.opensearch.analysis.common.CommonAnalysisPlugin;
import org.opensearch.common.logging.LogConfigurator;
import org.opensearch.common.settings.Settings;
import org.opensearch.env.Environment;
import org.opensearch.index.reindex.ReindexPlugin;
import org.opensearch.node.InternalSettingsPreparer;
import org.opensearch.node.Node;
import org.opensearch.painless.PainlessPlugin;
import org.opensearch.plugins.Plugin;
import org.opensearch.transport.Netty4Plugin;

/**
 * One single-node OpenSearch cluster for the loopback test stack, run in this JVM with its plugins
 * on the class path (the way OpenSearch's own test framework starts nodes). Security is not
 * installed (BasicAuthPlugin asks for basic credentials when the node is started with
 * -Dmlops.stack.basic_auth=USER:PASSWORD); HTTP and transport bind to the given loopback address only.
 *
 * <pre>java -cp classes:lib/* mlops.migration.stack.OpenSearchStackNode HOME HOST HTTP_PORT TRANSPORT_PORT NAME</pre>
 */
public final class OpenSearchStackNode {
    private static final List<Class<? extends Plugin>> PLUGINS = List.of(
            Netty4Plugin.class, ReindexPlugin.class, PainlessPlugin.class, CommonAnalysisPlugin.class,
            BasicAuthPlugin.class);

    private OpenSearchStackNode() {
    }

    /** Node's plugin-taking constructor is protected; this opens it to the runner. */
    private static final class StackNode extends Node {
        StackNode(Environment environment) {
            super(environment, PLUGINS, true);
        }
    }

    public static void main(String[] args) throws Exception {
        if (args.length != 5) {
            System.err.println("usage: OpenSearchStackNode HOME HOST HTTP_PORT TRANSPORT_PORT NAME");
            System.exit(2);
        }
        Path home = Paths.get(args[0]).toAbsolutePath();
        String host = args[1];
        if (!host.startsWith("127.")) {
            System.err.println("the test stack binds to loopback only, not " + host);
            System.exit(2);
        }
        Path config = Files.createDirectories(home.resolve("config"));
        Settings settings = Settings.builder()
                .put("path.home", home.toString())
                .put("path.data", Files.createDirectories(home.resolve("data")).toString())
                .put("path.logs", Files.createDirectories(home.resolve("logs")).toString())
                .put("cluster.name", "mlops-migration-" + args[4])
                .put("node.name", args[4])
                .put("network.host", host)
                .put("http.port", args[2])
                .put("transport.port", args[3])
                .put("discovery.type", "single-node")
                .put("cluster.routing.allocation.disk.threshold_enabled", false)
                .put("action.destructive_requires_name", false)
                .build();
        LogConfigurator.registerErrorListener();
        LogConfigurator.configureWithoutConfig(settings);
        Environment environment = InternalSettingsPreparer.prepareEnvironment(
                settings, Collections.emptyMap(), config, () -> args[4]);
        Node node = new StackNode(environment);
        CountDownLatch stopped = new CountDownLatch(1);
        Runtime.getRuntime().addShutdownHook(new Thread(() -> {
            try {
                node.close();
            } catch (Exception e) {
                e.printStackTrace();
            } finally {
                stopped.countDown();
            }
        }, "opensearch-stack-shutdown"));
        node.start();
        System.out.println("opensearch stack node " + args[4] + " started on http://" + host + ":" + args[2]);
        System.out.flush();
        stopped.await();
    }
}
