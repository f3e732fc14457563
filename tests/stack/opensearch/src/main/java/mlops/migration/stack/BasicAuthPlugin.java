package mlops.migration.stack;

import java.nio.charset.StandardCharsets;
import java.util.Base64;
import java.util.function.UnaryOperator;

import org.opensearch.client.node.NodeClient;
import org.opensearch.common.util.concurrent.ThreadContext;
import org.opensearch.core.rest.RestStatus;
import org.opensearch.plugins.ActionPlugin;
import org.opensearch.plugins.Plugin;
import org.opensearch.rest.BytesRestResponse;
import org.opensearch.rest.RestChannel;
import org.opensearch.rest.RestHandler;
import org.opensearch.rest.RestRequest;

/**
 * HTTP basic authentication for a stack node started with -Dmlops.stack.basic_auth=USER:PASSWORD, so
 * tests can see a server refuse wrong credentials (401) as a secured cluster does; the OpenSearch
 * security plugin is far larger than a test needs. Without the property every request passes.
 */
public final class BasicAuthPlugin extends Plugin implements ActionPlugin {
    static final String PROPERTY = "mlops.stack.basic_auth";

    @Override
    public UnaryOperator<RestHandler> getRestHandlerWrapper(ThreadContext threadContext) {
        String credentials = System.getProperty(PROPERTY);
        if (credentials == null || credentials.isEmpty()) {
            return null;
        }
        String expected = "Basic " + Base64.getEncoder().encodeToString(credentials.getBytes(StandardCharsets.UTF_8));
        return handler -> new RestHandler.Wrapper(handler) {
            @Override
            public void handleRequest(RestRequest request, RestChannel channel, NodeClient client) throws Exception {
                if (expected.equals(request.header("Authorization"))) {
                    super.handleRequest(request, channel, client);
                    return;
                }
                BytesRestResponse refused = new BytesRestResponse(RestStatus.UNAUTHORIZED, "application/json",
                        "{\"error\":{\"type\":\"security_exception\",\"reason\":\"missing or wrong credentials\"},"
                                + "\"status\":401}");
                refused.addHeader("WWW-Authenticate", "Basic realm=\"mlops-migration-stack\"");
                channel.sendResponse(refused);
            }
        };
    }
}
