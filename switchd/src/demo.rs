//! What a new data directory starts with: the category tree and the statutory calendar always;
//! with `--demo`, departments, users of every role, tickets in every state and articles.

use crate::auth::Auth;
use crate::cases::{Actor, Cases};
use crate::store::{Db, StoreError};
use chrono::NaiveDateTime;
use rexian_shared::*;

/// The demo users' password, printed at start and written in the README.
pub const DEMO_PASSWORD: &str = "rexian-demo";

/// Validates a category: codes are two-digit segments joined by dots (`04.01`), under their parent.
pub fn category(code: &str, name: &str, parent: Option<&str>) -> Result<Category, InvalidValue> {
    let bad = |reason: &str| InvalidValue { field: "code", field_zh: "分类代码", reason: reason.into() };
    let well_formed = code.split('.').all(|seg| seg.len() == 2 && seg.bytes().all(|b| b.is_ascii_digit()));
    if !well_formed {
        return Err(bad("应为两位数字分段，如04.01 / two-digit segments such as 04.01"));
    }
    let expected_parent = code.rsplit_once('.').map(|(p, _)| p);
    if parent != expected_parent {
        return Err(bad("上级分类须为代码的前缀 / the parent must be the code's prefix"));
    }
    if name.trim().is_empty() || name.chars().count() > 50 {
        return Err(InvalidValue { field: "name", field_zh: "分类名称", reason: "应为1至50个字 / 1 to 50 characters".into() });
    }
    Ok(Category { code: code.into(), name: name.trim().into(), parent_code: parent.map(Into::into) })
}

/// The default category tree for quality supervision (GB/T 39666-style, two levels).
const CATEGORIES: &[(&str, &str)] = &[
    ("01", "产品质量"),
    ("01.01", "食品相关产品"),
    ("01.02", "日用消费品"),
    ("01.03", "工业产品"),
    ("01.04", "农资产品"),
    ("02", "计量"),
    ("02.01", "计量器具"),
    ("02.02", "商品量（缺斤短两）"),
    ("02.03", "加油机"),
    ("03", "标准化"),
    ("03.01", "标准制定"),
    ("03.02", "标准实施"),
    ("04", "特种设备"),
    ("04.01", "电梯"),
    ("04.02", "锅炉"),
    ("04.03", "压力容器"),
    ("04.04", "气瓶"),
    ("04.05", "大型游乐设施"),
    ("05", "认证认可"),
    ("05.01", "强制性产品认证"),
    ("05.02", "检验检测机构"),
    ("06", "生产许可"),
    ("06.01", "工业产品生产许可证"),
    ("07", "质量管理"),
    ("99", "其他"),
];

/// Seeds what every new database needs: categories and the statutory calendar.
pub fn seed_base(db: &Db) -> Result<(), StoreError> {
    if db.categories()?.is_empty() {
        for (code, name) in CATEGORIES {
            let parent = code.rsplit_once('.').map(|(p, _)| p);
            let c = category(code, name, parent).map_err(|e| StoreError::Corrupt(e.to_string()))?;
            db.insert_category(&c)?;
        }
    }
    if db.calendar_days()?.is_empty() {
        for day in crate::calendar::statutory_seed() {
            db.upsert_calendar_day(&day)?;
        }
    }
    Ok(())
}

const DEPARTMENTS: &[(&str, Option<usize>, &str)] = &[
    ("市市场监督管理局", None, "010-12365"),
    ("办公室", Some(1), "010-60001001"),
    ("产品质量安全监督管理处", Some(1), "010-60001002"),
    ("计量处", Some(1), "010-60001003"),
    ("标准化处", Some(1), "010-60001004"),
    ("特种设备安全监察处", Some(1), "010-60001005"),
    ("认证认可监督管理处", Some(1), "010-60001006"),
    ("东城区分局", Some(1), "010-60002001"),
    ("西城区分局", Some(1), "010-60002002"),
];

/// (username, name, role, agent number, department index into DEPARTMENTS, 1-based)
type DemoUser = (&'static str, &'static str, Role, Option<&'static str>, Option<i64>);
const USERS: &[DemoUser] = &[
    ("admin", "系统管理员", Role::Admin, None, None),
    ("agent1", "王晓燕", Role::Agent, Some("1026"), None),
    ("agent2", "李明", Role::Agent, Some("1027"), None),
    ("supervisor", "张班长", Role::Supervisor, Some("1001"), None),
    ("quality", "赵承办（质量处）", Role::Handler, None, Some(3)),
    ("metrology", "钱承办（计量处）", Role::Handler, None, Some(4)),
    ("equipment", "孙承办（特种设备处）", Role::Handler, None, Some(6)),
    ("dongcheng", "周承办（东城分局）", Role::Handler, None, Some(8)),
    ("director", "陈局长", Role::Leader, None, Some(1)),
];

const ARTICLES: &[(ArticleKind, &str, &str, bool)] = &[
    (ArticleKind::Regulation, "特种设备安全监察条例（摘要）",
     "第一条 为了加强特种设备的安全监察，防止和减少事故，保障人民群众生命和财产安全，促进经济发展，制定本条例。第二条 本条例所称特种设备是指涉及生命安全、危险性较大的锅炉、压力容器（含气瓶）、压力管道、电梯、起重机械、客运索道、大型游乐设施和场（厂）内专用机动车辆。电梯困人、异响、运行不稳等问题可拨打12365反映。", true),
    (ArticleKind::Regulation, "中华人民共和国计量法（摘要）",
     "为了加强计量监督管理，保障国家计量单位制的统一和量值的准确可靠，制定本法。使用不合格的计量器具或者破坏计量器具准确度，给国家和消费者造成损失的，责令赔偿损失。集贸市场缺斤短两、加油机计量不准可向市场监管部门投诉。", true),
    (ArticleKind::Regulation, "中华人民共和国产品质量法（摘要）",
     "生产者、销售者依照本法规定承担产品质量责任。禁止伪造或者冒用认证标志等质量标志；禁止伪造产品的产地，伪造或者冒用他人的厂名、厂址；禁止在生产、销售的产品中掺杂、掺假，以假充真，以次充好。", true),
    (ArticleKind::Scope, "12365热线受理范围",
     "本热线受理产品质量、计量、标准化、特种设备安全、认证认可、工业产品生产许可等方面的投诉、举报和咨询。已经人民法院受理或者已经仲裁的纠纷、不属于市场监管职责的事项不予受理。", true),
    (ArticleKind::Guide, "工业产品生产许可证办事指南",
     "申请人通过政务服务网提交申请材料，包括营业执照、产品检验报告、生产设备清单等。审批部门自受理之日起二十个工作日内作出决定。许可证有效期五年。", true),
    (ArticleKind::Duty, "特种设备安全监察处职责",
     "负责锅炉、压力容器、电梯、起重机械、大型游乐设施等特种设备的安全监察，组织特种设备事故调查处理，监督检查特种设备生产、使用单位和检验检测机构。", true),
    (ArticleKind::Address, "来信来访地址及办公时间",
     "来信地址：市市场监督管理局12365投诉举报中心，邮编100000。接待时间：工作日上午9:00至12:00，下午13:30至17:00，法定节假日除外。", true),
    (ArticleKind::Faq, "电梯困人怎么办？",
     "请保持冷静，按下电梯内紧急呼叫按钮或拨打电梯内张贴的维保单位电话，切勿强行扒门。事后可拨打12365反映电梯维护保养问题。", false),
    (ArticleKind::Faq, "计量器具检定周期是多少？",
     "强制检定的计量器具按检定规程规定的周期检定，一般为一年。加油机、出租车计价器、电子计价秤等属于强制检定计量器具。", false),
];

/// The kinds of the demo's articles offered in the IVR's consultation menu.
pub fn ivr_article_kinds() -> Vec<ArticleKind> {
    ARTICLES.iter().filter(|a| a.3).map(|a| a.0).collect()
}

/// Fills an empty database with demonstration data through the real services, so every ticket
/// went through the workflow.
pub async fn seed_demo(auth: &Auth, cases: &Cases, now: NaiveDateTime) -> anyhow::Result<()> {
    let store = cases.store();
    let mut dept_ids = Vec::new();
    for (name, parent, phone) in DEPARTMENTS {
        let parent_id = parent.and_then(|p| dept_ids.get(p - 1).copied());
        let (name, phone) = (name.to_string(), phone.to_string());
        let d = store.write(move |db| db.insert_department(&name, parent_id, Some(&phone))).await?;
        dept_ids.push(d.id);
    }
    let dept = |i: i64| dept_ids.get(i as usize - 1).copied();
    for (username, name, role, agent_no, d) in USERS {
        let user = NewUser {
            username: username.to_string(),
            display_name: name.to_string(),
            role: *role,
            password: DEMO_PASSWORD.into(),
            agent_no: agent_no.map(Into::into),
            department_id: d.and_then(dept),
        };
        auth.create_user(user, "demo", now).await?;
    }
    let admin = Actor { user_id: 1, username: "agent1".into(), role: Role::Admin, department_id: None };
    for (kind, title, body, for_ivr) in ARTICLES {
        let a = ArticleInput { id: None, kind: *kind, title: title.to_string(), body: body.to_string(), published: true, for_ivr: *for_ivr };
        cases.save_article(&admin, a, now).await?;
    }
    seed_tickets(cases, &admin, dept(3).unwrap_or(1), dept(6).unwrap_or(1), now).await
}

async fn seed_tickets(cases: &Cases, staff: &Actor, quality: i64, equipment: i64, now: NaiveDateTime) -> anyhow::Result<()> {
    use TicketAction as A;
    let dispatch = |lead| A::Dispatch { lead_department: lead, assisting_departments: vec![], note: "请按时办理".into() };
    let handler = |d| Actor { user_id: 0, username: "demo-handler".into(), role: Role::Handler, department_id: Some(d) };
    let flows: Vec<(TicketKind, &str, &str, i64, Vec<A>)> = vec![
        (TicketKind::Complaint, "13800131234", "购买的电热水壶使用一周后漏电", quality, vec![]),
        (TicketKind::Complaint, "13912345678", "超市称重不准，缺斤短两", quality, vec![A::Accept { note: String::new() }]),
        (TicketKind::Report, "13600001111", "举报小区电梯长期未年检", equipment, vec![dispatch(equipment)]),
        (TicketKind::Complaint, "13700002222", "加油站加油机计量不准", quality, vec![dispatch(quality), A::Acknowledge]),
        (TicketKind::Complaint, "13500003333", "儿童玩具有尖锐边缘", quality, vec![dispatch(quality), A::Acknowledge, A::StartHandling]),
        (TicketKind::Complaint, "13800131234", "电动自行车充电器起火", quality,
         vec![dispatch(quality), A::Acknowledge, A::Reply { text: "经抽检，该批次充电器不合格，已责令召回。".into() }]),
        (TicketKind::Praise, "13300004444", "表扬特种设备处快速处置电梯困人", equipment, vec![]),
        (TicketKind::Consultation, "13200005555", "咨询工业产品生产许可证办理流程", quality,
         vec![A::AnswerDirectly { answer: "已告知办事指南及所需材料。".into(), cited_articles: vec![], cited_tickets: vec![] }]),
        (TicketKind::Consultation, "13100006666", "咨询进口锅炉是否需要监督检验", equipment, vec![A::DeferAnswer { contact_note: "下午3点前回电".into() }]),
        (TicketKind::Complaint, "15800007777", "装修用电线铜芯不足", quality,
         vec![dispatch(quality), A::Acknowledge, A::Reply { text: "已立案调查并处罚销售者。".into() },
              A::Callback { satisfaction: Satisfaction::Satisfied, note: "来电人满意".into() }, A::Close { note: String::new() }]),
        (TicketKind::Complaint, "15900008888", "投诉内容与市场监管无关", quality,
         vec![A::Reject { reason: RejectReason::OutOfScope, note: "已告知向劳动监察部门反映".into() }]),
        (TicketKind::DirectorMailbox, "18600009999", "建议加强校园周边食品相关产品抽检", quality, vec![dispatch(quality)]),
        (TicketKind::Report, "13900001212", "举报无证生产电线电缆", equipment,
         vec![dispatch(equipment), A::Return { reason: "属产品质量处职责，请改派".into() }]),
        (TicketKind::Complaint, "13800131234", "电热水壶漏电（重复来电）", quality,
         vec![A::MergeInto { target: TicketNo::from_parts(now.date(), 1) }]),
        (TicketKind::Complaint, "15000003434", "眼镜店验光不准", quality,
         vec![dispatch(quality), A::Acknowledge, A::Reply { text: "已对该店验光设备检定，责令整改。".into() },
              A::Callback { satisfaction: Satisfaction::Neutral, note: "基本满意".into() }]),
    ];
    for (i, (kind, phone, summary, dept, actions)) in flows.into_iter().enumerate() {
        // Spread the demo over the past weeks so some deadlines are near and some missed.
        let at = now - chrono::Duration::days(2 * i as i64);
        let mut new = NewTicket::phone(kind, PhoneNumber::parse(phone).ok(), summary, &format!("来电人反映：{summary}。"));
        new.caller.name = Some("演示来电人".into());
        let t = cases.create(staff, new, at).await?;
        for action in actions {
            let actor = match action {
                A::Acknowledge | A::StartHandling | A::Reply { .. } | A::Return { .. } => handler(dept),
                _ => staff.clone(),
            };
            cases.act(&actor, t.no.clone(), action, at).await?;
        }
    }
    Ok(())
}
