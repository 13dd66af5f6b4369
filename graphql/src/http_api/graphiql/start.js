// Starts GraphiQL against the server that served it: queries and mutations to POST /graphql,
// subscriptions on /graphql/ws. Served from this origin (not inline) so the page's
// Content-Security-Policy allows no inline script at all.
(function () {
  const url = new URL("/graphql", window.location.origin);
  const subscriptions = new URL("/graphql/ws", window.location.origin);
  subscriptions.protocol = url.protocol === "https:" ? "wss:" : "ws:";
  ReactDOM.createRoot(document.getElementById("graphiql")).render(
    React.createElement(GraphiQL, {
      fetcher: GraphiQL.createFetcher({
        url: url.toString(),
        subscriptionUrl: subscriptions.toString(),
      }),
      defaultEditorToolsVisibility: true,
    })
  );
})();
