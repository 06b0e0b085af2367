// `medgpt serve`: an OpenAI-compatible HTTP server (MedicalGPT's openai_api.py) on cpp-httplib.
//   GET /health, GET /v1/models, POST /v1/chat/completions, POST /v1/completions
// Requests are queued to one model thread (infer::BatchWorker), which generates waiting requests
// with the same options as one batch. `stream: true` answers with server-sent events ending in
// `data: [DONE]`. Every error is an OpenAI-style JSON object with its HTTP status; nothing a client
// sends can crash the server.
#include <httplib.h>
#include <sys/socket.h>

#include <atomic>
#include <chrono>
#include <csignal>
#include <ctime>
#include <filesystem>
#include <iostream>
#include <memory>
#include <thread>
#include <nlohmann/json.hpp>

#include "app/bounded_value.hpp"
#include "app/command.hpp"
#include "app/generation_setup.hpp"
#include "data/tokenizer/stream_decoder.hpp"
#include "parallel/grid.hpp"
#include "infer/batch_worker.hpp"
#include "serve/api_key.hpp"
#include "serve/request.hpp"
#include "serve/stop_text.hpp"
#include "util/error.hpp"
#include "util/log.hpp"
#include "util/signals.hpp"

namespace medgpt::app {

namespace {

using nlohmann::json;
using serve::ApiError;

void send_error(httplib::Response& res, const ApiError& e) {
  res.status = e.status;
  res.set_content(serve::error_json(e).dump(), "application/json");
}

// A request's output as it is produced (stop strings applied by StopText), shared by the model
// thread that feeds it and the HTTP thread that sends it.
struct Output {
  explicit Output(std::vector<std::string> stop) : text(std::move(stop)) {}
  std::mutex mu;
  std::condition_variable cv;
  serve::StopText text;
  bool done = false, cancelled = false, failed = false;
  bool stopped = false;  // set when done: ended by a stop string or an EOS id, not by length
  std::int64_t tokens = 0;
};

class Server {
 public:
  Server(const po::variables_map& vm)
      : tok_(load_inference_tokenizer(vm)), tmpl_(data::ChatTemplate::get(vm["template"].as<std::string>())),
        defaults_(generation_options(vm, required(vm, "model"), tok_, &tmpl_)), model_(load_inference_model(vm)),
        worker_(model_, static_cast<std::size_t>(vm["batch-size"].as<std::int64_t>())),
        name_(vm.count("model-name") ? vm["model-name"].as<std::string>()
                                     : std::filesystem::path(required(vm, "model")).lexically_normal().filename().string()),
        api_key_(vm.count("api-key") ? vm["api-key"].as<std::string>() : ""),
        request_{tok_, tmpl_, {}, defaults_, model_.config().max_position_embeddings} {
    if (vm.count("system")) request_.render.system = vm["system"].as<std::string>();
    request_.render.add_generation_prompt = true;
    if (name_.empty()) name_ = "medgpt";
  }

  void routes(httplib::Server& svr) {
    svr.set_pre_routing_handler([this](const httplib::Request& req, httplib::Response& res) {
      if (!api_key_.required() || req.path == "/health") return httplib::Server::HandlerResponse::Unhandled;
      if (!api_key_.accepts(req.get_header_value("Authorization"))) {
        send_error(res, {401, "invalid_request_error", "Incorrect API key provided", "", "invalid_api_key"});
        return httplib::Server::HandlerResponse::Handled;
      }
      return httplib::Server::HandlerResponse::Unhandled;
    });
    svr.Get("/health", [](const httplib::Request&, httplib::Response& res) { res.set_content(R"({"status":"ok"})", "application/json"); });
    svr.Get("/v1/models", [this](const httplib::Request&, httplib::Response& res) {
      json m = {{"id", name_}, {"object", "model"}, {"created", created_}, {"owned_by", "medgpt"}};
      res.set_content(json{{"object", "list"}, {"data", json::array({m})}}.dump(), "application/json");
    });
    svr.Post("/v1/chat/completions", [this](const httplib::Request& req, httplib::Response& res) { handle(req, res, true); });
    svr.Post("/v1/completions", [this](const httplib::Request& req, httplib::Response& res) { handle(req, res, false); });
    svr.set_error_handler([](const httplib::Request& req, httplib::Response& res) {
      if (!res.body.empty()) return;
      if (res.status == 404) send_error(res, {404, "invalid_request_error", "Unknown path " + req.path, "", "not_found"});
      else if (res.status == 413) send_error(res, {413, "invalid_request_error", "Request body too large", "", "payload_too_large"});
      else send_error(res, {res.status, "invalid_request_error", "HTTP error " + std::to_string(res.status), "", ""});
    });
    svr.set_exception_handler([](const httplib::Request&, httplib::Response& res, std::exception_ptr ep) {
      std::string what = "internal error";
      try {
        std::rethrow_exception(ep);
      } catch (const std::exception& e) {
        what = e.what();
      } catch (...) {
      }
      send_error(res, {500, "server_error", what, "", ""});
    });
  }

 private:
  // Feeds a decoded piece to the request's text; false ends its row (a stop string, or the client left).
  static bool feed(Output& out, const std::string& piece) {
    std::lock_guard<std::mutex> lock(out.mu);
    const bool more = out.text.push(piece);
    out.cv.notify_all();
    return more && !out.cancelled;
  }

  json usage(std::size_t prompt, std::int64_t completion) const {
    return {{"prompt_tokens", prompt}, {"completion_tokens", completion}, {"total_tokens", static_cast<std::int64_t>(prompt) + completion}};
  }

  json chunk(const std::string& id, bool chat, const std::string& text, const json& finish) const {
    json choice = {{"index", 0}, {"finish_reason", finish}};
    if (chat) choice["delta"] = text.empty() && !finish.is_null() ? json::object() : json{{"content", text}};
    else choice["text"] = text;
    return {{"id", id}, {"object", chat ? "chat.completion.chunk" : "text_completion"}, {"created", std::time(nullptr)}, {"model", name_},
            {"choices", json::array({choice})}};
  }

  void handle(const httplib::Request& req, httplib::Response& res, bool chat) {
    serve::Request ask;
    try {
      ask = serve::parse_request(req.body, chat, request_);
    } catch (const ApiError& e) {
      send_error(res, e);
      return;
    }
    const std::string id = (chat ? "chatcmpl-" : "cmpl-") + std::to_string(next_id_++);
    auto out = std::make_shared<Output>(ask.stop);
    auto decoder = std::make_shared<data::StreamDecoder>(tok_, /*skip_special_tokens=*/true);
    const auto eos = ask.options.eos_ids;
    auto future = std::make_shared<std::future<infer::Completion>>(worker_.submit(ask.prompt, ask.options, [out, decoder, eos](std::size_t, std::int64_t tok) {
      {
        std::lock_guard<std::mutex> lock(out->mu);
        ++out->tokens;
      }
      if (std::find(eos.begin(), eos.end(), tok) != eos.end()) return true;  // the end marker is not text
      return feed(*out, decoder->push(static_cast<data::TokenId>(tok)));
    }));
    const std::size_t prompt_tokens = ask.prompt.size();
    auto finish = [out, decoder, future]() {  // after generation: flush, mark done, say why it ended
      bool stopped = false;
      try {
        const infer::Completion c = future->get();
        stopped = c.stopped;
        if (!out->text.stopped()) feed(*out, decoder->flush());
      } catch (...) {
        std::lock_guard<std::mutex> lock(out->mu);
        out->failed = true;
      }
      std::lock_guard<std::mutex> lock(out->mu);
      out->stopped = out->text.stopped() || stopped;
      out->done = true;
      out->cv.notify_all();
    };

    if (!ask.stream) {
      finish();
      if (out->failed) return send_error(res, {500, "server_error", "generation failed", "", ""});
      const std::string text = out->text.text();
      json choice = {{"index", 0}, {"finish_reason", out->stopped ? "stop" : "length"}};
      if (chat) choice["message"] = {{"role", "assistant"}, {"content", text}};
      else choice["text"] = text, choice["logprobs"] = nullptr;
      json r = {{"id", id}, {"object", chat ? "chat.completion" : "text_completion"}, {"created", std::time(nullptr)}, {"model", name_},
                {"choices", json::array({choice})}, {"usage", usage(prompt_tokens, out->tokens)}};
      res.set_content(r.dump(), "application/json");
      return;
    }
    // Streaming: a thread-free pull: each call of the provider sends what became available.
    auto finisher = std::make_shared<std::thread>(finish);
    auto first = std::make_shared<bool>(true);
    res.set_header("Cache-Control", "no-cache");
    res.set_chunked_content_provider(
        "text/event-stream",
        [this, out, id, chat, first](std::size_t, httplib::DataSink& sink) {
          std::unique_lock<std::mutex> lock(out->mu);
          out->cv.wait(lock, [&] { return out->done || out->text.ready(false) > 0; });
          std::string events;
          if (*first && chat) {  // the role comes first, as OpenAI sends it
            json c = chunk(id, true, "", nullptr);
            c["choices"][0]["delta"] = {{"role", "assistant"}, {"content", ""}};
            events += "data: " + c.dump() + "\n\n";
          }
          *first = false;
          const std::string piece = out->text.take(out->done);
          if (!piece.empty()) events += "data: " + chunk(id, chat, piece, nullptr).dump() + "\n\n";
          const bool end = out->done;
          if (end) {
            events += "data: " + chunk(id, chat, "", out->stopped ? "stop" : "length").dump() + "\n\n";
            events += "data: [DONE]\n\n";
          }
          lock.unlock();
          if (!sink.write(events.data(), events.size())) {  // the client went away: end its row
            std::lock_guard<std::mutex> l(out->mu);
            out->cancelled = true;
            return false;
          }
          if (end) sink.done();
          return true;
        },
        [finisher](bool) {
          if (finisher->joinable()) finisher->join();
        });
  }

  data::Tokenizer tok_;
  const data::ChatTemplate& tmpl_;
  infer::GenerationOptions defaults_;
  model::Transformer model_;
  infer::BatchWorker worker_;
  std::string name_;
  serve::ApiKey api_key_;
  serve::RequestContext request_;
  std::int64_t created_ = std::time(nullptr);
  std::atomic<std::int64_t> next_id_{1};
};

int run_serve(const po::variables_map& vm) {
  parallel::Grid grid(1, 1);
  if (grid.world_size() > 1) util::fail("serve", "runs on one rank", "start it without mpirun");
  // SIGINT/SIGTERM: blocked in this thread and so in every thread started from here on (the model
  // thread, httplib's pool), and taken by the watcher below with sigtimedwait. The handler (util's
  // lock-free flag) stays for the threads MPI started earlier. A signal meant for the server then
  // never waits on a busy or blocked worker thread to be noticed.
  sigset_t stop_signals;
  sigemptyset(&stop_signals);
  sigaddset(&stop_signals, SIGINT);
  sigaddset(&stop_signals, SIGTERM);
  util::install_stop_signal_handlers({SIGINT, SIGTERM});
  pthread_sigmask(SIG_BLOCK, &stop_signals, nullptr);
  Server server(vm);
  httplib::Server svr;
  svr.new_task_queue = [] { return new httplib::ThreadPool(64); };  // waiting requests do not block new ones
  svr.set_payload_max_length(static_cast<std::size_t>(vm["max-body-bytes"].as<std::int64_t>()));
  server.routes(svr);
  // Debian's compiled cpp-httplib listens with a backlog of 5: 64 clients connecting at once
  // overflow it and wait out a 1 s SYN retransmission. Keep the listening socket and widen it.
  int listener = -1;
  svr.set_socket_options([&listener](socket_t sock) {
    httplib::default_socket_options(sock);
    listener = sock;
  });
  const std::string host = vm["host"].as<std::string>();
  int port = vm["port"].as<int>();
  if (port == 0) port = svr.bind_to_any_port(host);
  else if (!svr.bind_to_port(host, port)) port = -1;
  if (port < 0) util::fail("--port", "cannot listen on " + host + ":" + std::to_string(vm["port"].as<int>()), "pick a free port (0: any)");
  if (listener >= 0) ::listen(listener, SOMAXCONN);
  // The watcher stops the server (httplib's stop() is not async-signal-safe, so never from a handler).
  std::atomic<bool> done{false};
  std::thread watcher([&] {
    const timespec tick{0, 20'000'000};
    while (!done) {
      if (const int sig = sigtimedwait(&stop_signals, nullptr, &tick); sig > 0) util::raise_stop_flag(sig);
      if (util::stop_signal() != 0 && svr.is_running()) {  // a signal before listening began waits for it
        svr.stop();
        break;
      }
    }
  });
  std::cerr << "medgpt: serving on http://" << host << ":" << port << std::endl;  // tests read the port from here
  svr.listen_after_bind();
  done = true;
  watcher.join();
  std::signal(SIGINT, SIG_DFL);
  std::signal(SIGTERM, SIG_DFL);
  return 0;
}

}  // namespace

void register_serve_command(std::vector<Command>& out) {
  out.push_back({"serve", "OpenAI-compatible HTTP server: /v1/chat/completions (stream or not), /v1/completions, /v1/models, /health",
                 [](po::options_description& d) {
                   add_generation_options(d);
                   d.add_options()
                       ("host", po::value<std::string>()->default_value("127.0.0.1"), "address to listen on")
                       ("port", in_range(0, 65535)->default_value(8000), "port (0: any free port, printed at start)")
                       ("api-key", po::value<std::string>(), "require `Authorization: Bearer KEY`")
                       ("model-name", po::value<std::string>(), "the model id reported (default: the model folder's name)")
                       ("batch-size", at_least<std::int64_t>(1)->default_value(8), "requests generated together at most")
                       ("max-body-bytes", at_least<std::int64_t>(1)->default_value(1 << 20), "larger request bodies get 413");
                 },
                 run_serve});
}

}  // namespace medgpt::app
