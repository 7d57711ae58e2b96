# Signs one request with Ruby's mixlib-authentication (Chef's own code), for
# sign_e2e_test.go: args KEYFILE METHOD PATH BODYFILE TIMESTAMP USERID VERSION.
require "openssl"
require "mixlib/authentication/signedheaderauth"
key = OpenSSL::PKey::RSA.new(File.read(ARGV[0]))
obj = Mixlib::Authentication::SignedHeaderAuth.signing_object(
  http_method: ARGV[1], path: ARGV[2], body: File.binread(ARGV[3]),
  timestamp: ARGV[4], user_id: ARGV[5], proto_version: ARGV[6])
obj.sign(key, sign_algorithm: ARGV[6] == "1.3" ? "sha256" : "sha1", sign_version: ARGV[6]).sort.each { |k, v| puts "#{k}: #{v}" }
