//! Every text the agent sees, in Simplified Chinese (the default) and English.
//!
//! The strings live in one Rust table ([`T`]) rather than locale files loaded at start: a key
//! that is used but missing, or a language without a text, is a compile error instead of a
//! blank label at run time, and nothing can fail to load on an agent's PC
//! (docs/decisions/0010-desktop-strings-and-shape.md). Domain labels (ticket kinds, states, …)
//! come from `rexian_shared`'s `zh()`/`en()`; desk error codes are translated by
//! [`error_code_text`].

use rexian_shared::ErrorCode;
use serde::{Deserialize, Serialize};

/// The language the desktop shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Lang {
    /// 简体中文, the default.
    #[default]
    Zh,
    En,
}

macro_rules! texts {
    ($($key:ident => $zh:literal, $en:literal;)+) => {
        /// A text key; [`T::s`] gives its text in a language.
        #[derive(Debug, Clone, Copy, PartialEq, Eq)]
        pub enum T { $($key),+ }
        impl T {
            /// Every key (for the completeness test).
            pub const ALL: &'static [T] = &[$(T::$key),+];
            pub fn s(self, lang: Lang) -> &'static str {
                match (self, lang) {
                    $((T::$key, Lang::Zh) => $zh, (T::$key, Lang::En) => $en,)+
                }
            }
        }
    };
}

texts! {
    AppTitle => "热线坐席 Rexian Agent", "热线坐席 Rexian Agent";
    Language => "English", "中文";
    // Login
    LoginTitle => "坐席登录", "Agent login";
    Server => "服务器地址", "Server address";
    Username => "用户名", "User name";
    Password => "密码", "Password";
    LoginButton => "登录", "Log in";
    LoggingIn => "正在登录…", "Logging in…";
    CertChangedTitle => "服务器证书已变更！", "The server certificate has changed!";
    CertChangedBody => "此服务器出示的证书与首次登录时记录的不同，可能有人冒充服务器。请联系系统管理员核对指纹；只有在管理员确认更换了证书后，才可信任新证书。",
        "This server presented a certificate other than the one recorded at the first login: someone may be impersonating it. Ask the administrator to compare fingerprints; trust the new certificate only once they confirm it was replaced.";
    PinnedFingerprint => "已记录的指纹", "Pinned fingerprint";
    PresentedFingerprint => "服务器出示的指纹", "Presented fingerprint";
    TrustNewCert => "管理员已确认，信任新证书", "The administrator confirmed: trust the new certificate";
    BadServerAddress => "服务器地址格式应为 IP:端口，例如 192.168.1.10:7443", "The server address must be IP:port, e.g. 192.168.1.10:7443";
    UsernameRequired => "请填写用户名", "Enter the user name";
    PasswordRequired => "请填写密码", "Enter the password";
    // Connection
    ConnOffline => "未连接", "Not connected";
    ConnConnecting => "正在连接…", "Connecting…";
    ConnOnline => "已连接", "Connected";
    ConnReconnecting => "连接中断，正在重连…", "Connection lost, reconnecting…";
    SignOut => "退出登录", "Sign out";
    // Agent state bar
    AgentLogin => "签入", "Sign in to queues";
    AgentLogout => "签出", "Sign out of queues";
    Ready => "就绪", "Ready";
    NotReady => "临时闭席", "Not ready";
    Return => "返回", "Return";
    NotReadyReason => "闭席原因", "Reason";
    StateLoggedOut => "未签入", "Signed out";
    StateReady => "就绪", "Ready";
    StateReserved => "振铃中", "Ringing";
    StateOnCall => "通话中", "On a call";
    StateWrapUp => "话后处理", "Wrap-up";
    StateNotReady => "临时闭席", "Not ready";
    TimeInState => "本状态时长", "Time in state";
    WrapUpLeft => "话后处理剩余", "Wrap-up left";
    Shortcuts => "快捷键", "Keyboard shortcuts";
    OpenTicket => "打开工单", "Open the ticket";
    Waiting => "排队等待", "Waiting";
    // Softphone
    Softphone => "软电话", "Softphone";
    Incoming => "来电", "Incoming call";
    Answer => "接听", "Answer";
    HangUp => "挂断", "Hang up";
    Decline => "拒接", "Decline";
    Caller => "来电号码", "Caller";
    Called => "被叫号码", "Called number";
    CallTime => "通话时长", "Call time";
    Connected => "通话中", "Connected";
    Dialling => "正在呼叫…", "Calling…";
    RingingFar => "对方振铃…", "Ringing…";
    CallEndedMsg => "通话已结束", "Call ended";
    Number => "号码", "Number";
    Dial => "呼出", "Call";
    DtmfPad => "拨号盘", "Keypad";
    TransferOut => "转外线", "Transfer to number";
    Conference => "三方通话", "Conference";
    ConferenceJoined => "第三方已加入", "Third party joined";
    ConferenceLeft => "第三方已离开", "Third party left";
    ToSatisfaction => "转满意度评价", "Transfer to satisfaction survey";
    Hold => "保持", "Hold";
    Resume => "取回", "Resume";
    Mute => "静音", "Mute";
    Unmute => "取消静音", "Unmute";
    OnHold => "通话已保持，来电者正在听等待音乐", "On hold: the caller hears music";
    Muted => "已静音，来电者听不到您", "Muted: the caller cannot hear you";
    AgentOrNo => "坐席用户名或工号", "Agent user name or number";
    TransferToAgent => "转坐席", "Transfer to agent";
    CallSupervisor => "呼叫班长", "Call the supervisor";
    Consult => "咨询后转接", "Consult first";
    CompleteTransfer => "完成转接", "Complete transfer";
    CancelConsult => "取消咨询", "Cancel consultation";
    Consulting => "咨询中：来电者正在等待", "Consulting: the caller is waiting";
    // Screen pop
    CallerProfile => "来电人档案", "Caller profile";
    RepeatCaller => "重复来电", "Repeat caller";
    RepeatComplainant => "重复投诉", "Repeat complainant";
    Vip => "重点关注", "VIP";
    Blocked => "已列入黑名单", "Blocked";
    NoHistory => "无历史记录", "No earlier contacts";
    TicketsCount => "工单数", "Tickets";
    FirstSeen => "首次来电", "First contact";
    NewCaller => "新来电人", "New caller";
    // Tabs
    TabPhone => "话务", "Calls";
    TabIntake => "工单登记", "New ticket";
    TabTickets => "工单查询", "Tickets";
    TabSettings => "设置", "Settings";
    // Intake
    Kind => "工单类型", "Kind";
    Channel => "来源渠道", "Channel";
    Category => "分类", "Category";
    CategorySearch => "搜索分类", "Search categories";
    NoCategory => "（未选择）", "(none)";
    CallerName => "来电人姓名", "Caller name";
    CallerPhone => "联系电话", "Phone";
    CallerEnterprise => "来电人单位", "Caller's company";
    CallerAddress => "联系地址", "Address";
    IdNumber => "身份证号码", "ID number";
    Email => "电子邮箱", "E-mail";
    Subject => "被投诉/举报对象", "Party complained about";
    SubjectName => "对象名称", "Name";
    CreditCode => "统一社会信用代码", "Credit code";
    SubjectAddress => "对象地址", "Address";
    Summary => "摘要", "Summary";
    Content => "详细内容", "Details";
    Anonymous => "匿名", "Anonymous";
    Confidential => "保密", "Confidential";
    Consent => "同意回访", "May be called back";
    LinkedCall => "关联通话记录", "Linked call record";
    Save => "保存工单", "Save ticket";
    Saving => "正在保存…", "Saving…";
    Clear => "清空", "Clear";
    Saved => "工单已登记，请告知来电人：", "Ticket registered; read to the caller:";
    TicketNo => "工单编号", "Ticket number";
    VerificationCode => "查询验证码", "Verification code";
    FixErrors => "请更正标红的内容", "Correct the fields marked in red";
    SummaryRequired => "请填写摘要（1至200字）", "Enter a summary (1 to 200 characters)";
    TooLong => "内容过长", "Too long";
    PhoneInvalid => "电话号码应为3至20位数字", "The phone number must be 3 to 20 digits";
    CreditInvalid => "统一社会信用代码应为18位且校验位正确", "The credit code must be 18 characters with a valid check character";
    SubjectNameRequired => "填写了对象信息时须填写对象名称", "Name the party when giving its details";
    EmailInvalid => "电子邮箱格式不正确", "Invalid e-mail address";
    IdInvalid => "身份证号码应为18位", "The ID number must have 18 characters";
    // Ticket list / detail
    Search => "查询", "Search";
    Text => "关键词", "Keywords";
    State => "状态", "State";
    All => "全部", "All";
    OverdueOnly => "仅超期", "Overdue only";
    ReminderDueOnly => "仅催办到期", "Reminder due only";
    Department => "部门", "Department";
    CreatedFrom => "登记日期起", "Registered from";
    CreatedTo => "登记日期止", "Registered until";
    BadDate => "应为YYYY-MM-DD格式的北京日期，例如2026-11-29", " must be a Beijing date as YYYY-MM-DD, e.g. 2026-11-29";
    DatesReversed => "登记日期止不能早于登记日期起", "\"Registered until\" cannot be before \"Registered from\"";
    ClearFilters => "清除筛选", "Clear filters";
    // Saved filters (常用筛选), kept by switchd per user.
    SavedFilters => "常用筛选", "Saved filters";
    NoSavedFilters => "（尚无）", "(none yet)";
    FilterName => "筛选名称", "Filter name";
    SaveFilter => "保存为常用筛选", "Save as a saved filter";
    DeleteFilter => "删除常用筛选", "Delete the saved filter";
    FilterNameInvalid => "常用筛选名称应为1至30个字", "The filter's name must be 1 to 30 characters";
    TooManyFilters => "常用筛选已达上限（50个），请先删除不用的", "You have 50 saved filters, the most allowed: delete one first";
    FilterGone => "该常用筛选已不存在，可能已在其他座席上删除", "That saved filter no longer exists (perhaps deleted at another desk)";
    ChooseFilterFirst => "请先点选要删除的常用筛选", "Click the saved filter to delete first";
    Overdue => "超期", "Overdue";
    Due => "办理期限", "Due";
    Created => "登记时间", "Registered";
    Total => "共", "Total";
    Open => "查看", "Open";
    History => "办理记录", "History";
    Actions => "办理", "Actions";
    Note => "说明", "Note";
    Accept => "受理", "Accept";
    Reject => "不予受理", "Not accept";
    Callback => "回访", "Call back";
    Satisfaction => "满意度", "Satisfaction";
    Close => "办结", "Close";
    CommentAct => "添加备注", "Add comment";
    AnswerDirectly => "直接答复", "Answer now";
    DeferAnswer => "暂不能答复", "Cannot answer now";
    Reply => "答复内容", "Reply";
    Dispatch => "转办", "Dispatch";
    LeadDepartment => "主办部门", "Lead department";
    Done => "已完成", "Done";
    CallCaller => "呼叫来电人", "Call the caller";
    Back => "返回列表", "Back to the list";
    // Printed forms (TKT-7) and the list export; forms print Chinese with English small beneath.
    PrintAcceptance => "打印受理单", "Print acceptance form";
    PrintDispatch => "打印转办单", "Print dispatch form";
    ExportExcel => "导出Excel", "Export to Excel";
    SavedTo => "已保存到：", "Saved to: ";
    SaveFailed => "文件保存失败：", "Cannot save the file: ";
    NoCjkFont => "未找到中文字体，无法生成PDF，请安装文泉驿微米黑或思源黑体", "No Chinese font is installed: install WenQuanYi Micro Hei or Noto Sans CJK";
    FontUnusable => "中文字体无法使用，无法生成PDF", "The Chinese font cannot be used for PDF";
    AcceptanceFormTitle => "12365 热线受理单", "12365 Hotline Acceptance Form";
    DispatchFormTitle => "12365 热线转办单", "12365 Hotline Dispatch Form";
    AcceptanceFile => "受理单", "acceptance-form";
    DispatchFile => "转办单", "dispatch-form";
    TicketListFile => "工单列表", "tickets";
    TimesInBeijingTime => "时间均为北京时间", "Times are Beijing time";
    PrintedAt => "打印时间", "Printed";
    Withheld => "（保密）", "(withheld)";
    AnonymousCaller => "（匿名）", "(anonymous)";
    AssistingDepartments => "协办部门", "Assisting";
    RegisteredBy => "登记人", "Registered by";
    DispatchedAt => "转办时间", "Dispatched";
    Dispatcher => "转办人", "Dispatched by";
    DispatchNote => "转办意见", "Dispatch note";
    AcceptanceOpinion => "受理意见", "Acceptance opinion";
    HandlingOpinion => "承办意见", "Handling opinion";
    AcceptorSignature => "受理人签字", "Accepted by";
    HandlerSignature => "承办人签字", "Handled by";
    SignDate => "日期", "Date";
    Yes => "是", "Yes";
    No => "否", "No";
    // Due list (待办): callbacks, later replies, return visits, reminders (TKT-5, TKT-8)
    TabDue => "待办", "To do";
    DueHeading => "待办事项", "Things to do";
    DueKind => "类别", "Kind";
    DueWhat => "事项", "Matter";
    DueWhen => "等待/到期", "Waiting / due";
    CallbackRequest => "回拨请求", "Callback request";
    LaterReply => "待答复", "Later reply";
    ReturnVisit => "待回访", "Return visit";
    ReminderKind => "催办", "Reminder";
    NothingDue => "暂无待办事项", "Nothing to do";
    Refresh => "刷新", "Refresh";
    DialCaller => "拨打来电人", "Call the caller";
    DialDepartment => "拨打承办部门", "Call the department";
    Outcome => "回拨结果", "Outcome";
    OutcomeRequired => "请填写回拨结果", "Enter what came of the call";
    FinishCallback => "完成回拨", "Callback done";
    VisitNote => "回访说明", "Return-visit note";
    RecordVisit => "记录回访", "Record the return visit";
    SatisfactionRequired => "请选择满意度", "Choose the satisfaction";
    GotIt => "知道了", "Got it";
    ReminderPopup => "催办提醒", "Reminder";
    NotDueYet => "未到时间", "Not due yet";
    SetReminder => "设置催办", "Set a reminder";
    ReminderDate => "催办日期", "Reminder date";
    ReminderTime => "催办时间", "Reminder time";
    ReminderNote => "催办内容", "Reminder note";
    ReminderDateInvalid => "日期格式应为 2026-11-30", "The date must look like 2026-11-30";
    ReminderTimeInvalid => "时间格式应为 14:30（北京时间）", "The time must look like 14:30 (Beijing time)";
    ReminderInPast => "催办时间应晚于现在", "The reminder must be in the future";
    ReminderNoteRequired => "请填写催办内容", "Enter the reminder note";
    ReminderSet => "催办已设置", "Reminder set";
    // Knowledge base
    Knowledge => "参考资料", "Reference materials";
    KnowledgeQuery => "检索词", "Search terms";
    KnowledgeSearch => "检索", "Search";
    NoArticles => "没有找到相关资料", "Nothing found";
    // Consultation at intake (TKT-3)
    SuggestedAnswers => "参考答复（随输入推荐）", "Suggested answers (as you type)";
    NoSuggestions => "输入摘要或内容后，这里会推荐参考资料和既往答复", "Articles and earlier answers matching the summary and content show here";
    EarlierAnswer => "既往答复", "Earlier answer";
    Cite => "引用", "Cite";
    UseAnswer => "采用此答复", "Use this answer";
    AnswerText => "答复内容", "Answer";
    ContactNote => "回复约定", "Reply arrangement";
    AnswerRequired => "请填写答复内容（1至2000字）", "Enter the answer (1 to 2000 characters)";
    ContactNoteRequired => "请填写回复约定：何时、如何答复来电人（1至500字）", "Enter when and how the caller will be answered (1 to 500 characters)";
    AnsweredAtIntake => "已答复并办结", "Answered and closed";
    DeferredAtIntake => "已转为待回复，请按约定回复来电人", "Recorded for a later reply as arranged";
    FollowUpFailed => "工单已登记，但答复未保存：", "The ticket is registered, but the answer was not saved: ";
    // Settings / audio
    Microphone => "麦克风", "Microphone";
    Speaker => "耳机/扬声器", "Headset / speaker";
    SystemDefault => "系统默认", "System default";
    TestMic => "测试麦克风", "Test microphone";
    TestSpeaker => "测试耳机", "Test the headset";
    SpeakerTestHint => "应先听到高音，再听到低音", "You should hear a high tone, then a low one";
    StopTest => "停止测试", "Stop test";
    MicLevel => "音量", "Level";
    AudioOk => "音频设备正常", "Audio devices ready";
    NoMicrophone => "未找到麦克风，请插入耳机后重试", "No microphone found: plug in the headset and try again";
    NoSpeaker => "未找到耳机或扬声器", "No headset or speaker found";
    DeviceBusy => "音频设备被占用或不可用，请关闭其他使用耳机的程序", "The audio device is busy or unavailable: close other programs using the headset";
    AudioFailed => "音频出错", "Audio error";
    RefreshDevices => "刷新设备", "Refresh devices";
    // Errors
    CannotConnect => "无法连接服务器，请检查地址和网络", "Cannot reach the server: check the address and the network";
    ConnectionClosed => "与服务器的连接已断开", "The connection to the server is closed";
    UnexpectedReply => "服务器回复异常", "Unexpected reply from the server";
}

/// The Chinese (or English) message for a desk error code. Every code of the protocol has its
/// own text; a code added to the protocol after this build reads as a generic failure.
pub fn error_code_text(code: ErrorCode, lang: Lang) -> &'static str {
    let (zh, en) = match code {
        ErrorCode::IncompatibleVersion => ("客户端版本与服务器不兼容，请升级坐席软件", "This desktop's version does not match the server: please upgrade"),
        ErrorCode::NotAuthenticated => ("请先登录", "Please log in first"),
        ErrorCode::BadCredentials => ("用户名或密码错误", "Wrong user name or password"),
        ErrorCode::AccountLocked => ("登录失败次数过多，账户已锁定，请稍后再试或联系管理员", "Too many failed logins: the account is locked for a while"),
        ErrorCode::SessionExpired => ("会话已过期，请重新登录", "The session has expired: please log in again"),
        ErrorCode::Forbidden => ("您的角色无权执行此操作", "Your role may not do this"),
        ErrorCode::NotFound => ("未找到相应记录", "Not found"),
        ErrorCode::InvalidField => ("填写内容有误", "A field is invalid"),
        ErrorCode::InvalidTransition => ("当前状态不允许此操作", "The current state does not allow this"),
        ErrorCode::Conflict => ("该记录已存在", "It exists already"),
        ErrorCode::TooLarge => ("内容过大", "Too large"),
        ErrorCode::WeakPassword => ("密码强度不足（至少8位）", "The password is too weak (at least 8 characters)"),
        ErrorCode::Internal => ("服务器内部错误，已记录，请稍后重试", "Internal server error (logged): try again later"),
        ErrorCode::Busy => ("对方忙或不在线，请稍后再试", "The other party is busy or away: try again later"),
        _ => ("操作失败", "The request failed"),
    };
    match lang {
        Lang::Zh => zh,
        Lang::En => en,
    }
}

/// "中文 / English" labels of shared enums in the chosen language.
pub fn label(zh: &'static str, en: &'static str, lang: Lang) -> &'static str {
    match lang {
        Lang::Zh => zh,
        Lang::En => en,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_text_has_both_languages_and_chinese_is_chinese() {
        for t in T::ALL {
            assert!(!t.s(Lang::Zh).is_empty() && !t.s(Lang::En).is_empty(), "{t:?}");
        }
        // Chinese first: the default language shows CJK text.
        assert_eq!(Lang::default(), Lang::Zh);
        assert!(T::LoginButton.s(Lang::Zh).chars().all(|c| ('\u{4e00}'..='\u{9fff}').contains(&c)));
    }

    #[test]
    fn every_desk_error_code_is_translated() {
        let generic = error_code_text(ErrorCode::Internal, Lang::Zh);
        for &code in ErrorCode::ALL {
            let zh = error_code_text(code, Lang::Zh);
            assert!(zh.chars().any(|c| ('\u{4e00}'..='\u{9fff}').contains(&c)), "{code:?}: {zh}");
            assert_ne!(zh, "操作失败", "{code:?} has its own text");
            if code != ErrorCode::Internal {
                assert_ne!(zh, generic);
            }
            assert!(error_code_text(code, Lang::En).is_ascii(), "{code:?}");
        }
    }
}
